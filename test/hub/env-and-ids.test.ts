// The settings Python's huggingface_hub reads from the environment, hub id recognition, and blob digests.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { digestKind, fileDigest, normalizeEtag } from '../../src/hub/digest.js';
import {
  formatBytes,
  formatHubProgress,
  hfHome,
  hubCacheDir,
  hubEndpoint,
  hubOffline,
  hubToken,
  isHubId,
  parseHubId,
  repoFolderName,
} from '../../src/hub/index.js';

describe('hubCacheDir', () => {
  it('follows Python: HF_HUB_CACHE, then HUGGINGFACE_HUB_CACHE, then HF_HOME/hub, then XDG, then ~/.cache', () => {
    expect(hubCacheDir({ HOME: '/h' })).toBe('/h/.cache/huggingface/hub');
    expect(hubCacheDir({ HOME: '/h', XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/huggingface/hub');
    expect(hubCacheDir({ HOME: '/h', XDG_CACHE_HOME: '/xdg', HF_HOME: '/hf' })).toBe('/hf/hub');
    expect(hubCacheDir({ HF_HOME: '/hf', HUGGINGFACE_HUB_CACHE: '/legacy' })).toBe('/legacy');
    expect(hubCacheDir({ HF_HOME: '/hf', HUGGINGFACE_HUB_CACHE: '/legacy', HF_HUB_CACHE: '/new' })).toBe('/new');
  });

  it('expands ~ and $VARS like os.path.expanduser/expandvars, and ignores empty values', () => {
    expect(hubCacheDir({ HOME: '/h', HF_HOME: '~/hf' })).toBe('/h/hf/hub');
    expect(hubCacheDir({ HOME: '/h', DATA: '/data', HF_HUB_CACHE: '$DATA/cache/${DATA}' })).toBe('/data/cache//data');
    expect(hubCacheDir({ HF_HUB_CACHE: '/x/$UNSET_VAR' })).toBe('/x/$UNSET_VAR');
    expect(hubCacheDir({ HOME: '/h', HF_HOME: '' })).toBe('/h/.cache/huggingface/hub');
    expect(hubCacheDir({})).toBe(join(homedir(), '.cache/huggingface/hub'));
  });
});

describe('endpoint, offline and token', () => {
  it('reads HF_ENDPOINT without trailing slashes', () => {
    expect(hubEndpoint({})).toBe('https://huggingface.co');
    expect(hubEndpoint({ HF_ENDPOINT: 'https://hf-mirror.example/' })).toBe('https://hf-mirror.example');
  });

  it('reads HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as Python does', () => {
    for (const v of ['1', 'ON', 'yes', 'True']) expect(hubOffline({ HF_HUB_OFFLINE: v })).toBe(true);
    for (const v of ['0', 'off', 'no', 'false', '', '2']) expect(hubOffline({ HF_HUB_OFFLINE: v })).toBe(false);
    expect(hubOffline({ TRANSFORMERS_OFFLINE: '1' })).toBe(true);
    expect(hubOffline({})).toBe(false);
  });

  it('takes HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the login token file', async () => {
    const home = await mkdtemp(join(tmpdir(), 'phi-forge-hfhome-'));
    try {
      expect(hubToken({ HF_HOME: home })).toBeUndefined();
      await writeFile(join(home, 'token'), 'hf_fromFile\n');
      expect(hubToken({ HF_HOME: home })).toBe('hf_fromFile');
      expect(hubToken({ HF_HOME: home, HUGGING_FACE_HUB_TOKEN: 'hf_legacy' })).toBe('hf_legacy');
      expect(hubToken({ HF_HOME: home, HUGGING_FACE_HUB_TOKEN: 'hf_legacy', HF_TOKEN: ' hf_env ' })).toBe('hf_env');
      await writeFile(join(home, 'other'), 'hf_otherPath');
      expect(hubToken({ HF_HOME: home, HF_TOKEN_PATH: join(home, 'other') })).toBe('hf_otherPath');
      expect(hfHome({ HF_HOME: home })).toBe(home);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('isHubId', () => {
  it('accepts owner/name (and owner/name@revision)', () => {
    for (const s of ['microsoft/Phi-4-mini-instruct', 'microsoft/Phi-3.5-mini-instruct', 'Qwen/Qwen2.5-0.5B', 'a/b', 'org_x/model_y@v1.0', 'o/n@refs/pr/1']) {
      expect(isHubId(s), s).toBe(true);
    }
    expect(parseHubId('microsoft/phi-2@main')).toEqual({ repo: 'microsoft/phi-2', revision: 'main' });
    expect(parseHubId('microsoft/phi-2')).toEqual({ repo: 'microsoft/phi-2' });
  });

  it('rejects local paths, recipe names and malformed ids', () => {
    for (const s of [
      'phi-4-mini',
      './microsoft/Phi-4',
      '/abs/path',
      '~/models/x',
      'a/b/c',
      'a\\b',
      'recipes/phi4.json',
      'recipes/phi4.yaml',
      'models/model.safetensors',
      '../x',
      'a/',
      '/b',
      'a/-b',
      'a/b.',
      'a/b--c',
      'a/b..c',
      'a/b@',
      'a/b@../../x',
      '',
    ]) {
      expect(isHubId(s), s).toBe(false);
    }
  });

  it('names cache folders as Python does', () => {
    expect(repoFolderName('microsoft/Phi-4-mini-instruct')).toBe('models--microsoft--Phi-4-mini-instruct');
  });
});

describe('digests', () => {
  it('computes git blob ids exactly as git does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phi-forge-digest-'));
    try {
      const file = join(dir, 'f.txt');
      const content = 'hello phi-forge\n'.repeat(1000);
      await writeFile(file, content);
      const reference = execFileSync('git', ['hash-object', file], { encoding: 'utf8' }).trim();
      expect(await fileDigest(file, 'git-sha1', Buffer.byteLength(content))).toBe(reference);
      // The well-known id of "hello\n" pins the format independently of the machine's git.
      await writeFile(file, 'hello\n');
      expect(await fileDigest(file, 'git-sha1', 6)).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
      expect(await fileDigest(file, 'sha256', 6)).toBe('5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads ETags as Python normalizes them and knows which digest a blob name is', () => {
    expect(normalizeEtag('"abc"')).toBe('abc');
    expect(normalizeEtag('W/"abc"')).toBe('abc');
    expect(normalizeEtag(null)).toBeUndefined();
    expect(digestKind('a'.repeat(64))).toBe('sha256');
    expect(digestKind('b'.repeat(40))).toBe('git-sha1');
    expect(digestKind('xet-hash-like-thing')).toBeUndefined();
  });
});

describe('progress text', () => {
  it('shows the file, its bytes so far and the file count', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(7_670_000_000)).toBe('7.67 GB');
    expect(formatHubProgress({ file: 'm.safetensors', bytes: 1_200_000_000, totalBytes: 4_970_000_000, filesDone: 3, filesTotal: 9 })).toBe(
      'm.safetensors 1.20 GB / 4.97 GB (3/9 files)',
    );
    expect(formatHubProgress({ file: 'config.json', bytes: 10, totalBytes: 10, filesDone: 1, filesTotal: 9 })).toBe('config.json (1/9 files)');
  });
});
