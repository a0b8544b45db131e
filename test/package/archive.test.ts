import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, cp, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARCHIVE_EPOCH_SECONDS, tarEntryHeader, writeTarGz, writeZip } from '../../src/package/archive.js';
import { PackageError } from '../../src/util/errors.js';
import { cleanTempDirs, treeDigest, tempDir, writeFakePackage } from '../helpers/package.js';

const repoRoot = new URL('../../', import.meta.url).pathname;
const hasUnzip = spawnSync('unzip', ['-v']).status === 0;

let work: string;
let pkg: string;
beforeAll(async () => {
  work = await tempDir('phi-forge-archive-');
  pkg = await writeFakePackage(join(work, 'tiny-test-cpu'));
  // A nested folder and an empty file, so folder entries and zero-length files are covered too.
  await mkdir(join(pkg, 'extra', 'deep'), { recursive: true });
  await writeFile(join(pkg, 'extra', 'deep', 'note.txt'), 'nested\n');
  await writeFile(join(pkg, 'extra', 'empty'), '');
});
afterAll(cleanTempDirs);

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Runs python3 with a script; returns its stdout parsed as JSON. */
function python(script: string, ...args: string[]): unknown {
  return JSON.parse(execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8' }));
}

describe('writeTarGz', () => {
  it('returns the size and sha256 of what it wrote', async () => {
    const r = await writeTarGz(pkg, join(work, 'out', 'a.tar.gz'));
    const bytes = await readFile(r.file);
    expect(r.bytes).toBe(bytes.length);
    expect(r.sha256).toBe(sha(bytes));
    expect(r.files).toBe(8); // 6 package files + extra/deep/note.txt + extra/empty
  });

  it('is byte-identical across runs, mtimes, modes and folder names', async () => {
    const a = await readFile((await writeTarGz(pkg, join(work, 'det', '1.tar.gz'))).file);
    const b = await readFile((await writeTarGz(pkg, join(work, 'det', '2.tar.gz'))).file);
    expect(b.equals(a)).toBe(true);
    // Same files elsewhere, with other mtimes and permission bits: only names and contents count.
    const copy = join(work, 'elsewhere', 'other-name');
    await cp(pkg, copy, { recursive: true });
    await utimes(join(copy, 'model.onnx.data'), new Date('2031-05-06T07:08:09Z'), new Date('2031-05-06T07:08:09Z'));
    await utimes(join(copy, 'extra'), new Date('2001-01-01'), new Date('2001-01-01'));
    await chmod(join(copy, 'model.onnx'), 0o600);
    await chmod(join(copy, 'tokenizer.json'), 0o755);
    const c = await readFile((await writeTarGz(copy, join(work, 'det', '3.tar.gz'), { root: 'tiny-test-cpu' })).file);
    expect(c.equals(a)).toBe(true);
  });

  it('writes a constant gzip header: no file name, mtime 0, OS byte 255', async () => {
    const b = await readFile((await writeTarGz(pkg, join(work, 'gz', 'h.tar.gz'))).file);
    expect([...b.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 0]); // magic, deflate, FLG = 0 (no FNAME/FEXTRA/FCOMMENT)
    expect(b.readUInt32LE(4)).toBe(0);
    expect(b[9]).toBe(255);
  });

  it('GNU tar lists and extracts it: fixed modes, 0/0 owner, 1980 date, same contents', async () => {
    const file = (await writeTarGz(pkg, join(work, 'gnu', 'p.tar.gz'))).file;
    const listing = execFileSync('tar', ['-tzvf', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }).trim().split('\n');
    expect(listing.map((l) => l.split(/\s+/).at(-1))).toEqual([
      'tiny-test-cpu/',
      'tiny-test-cpu/extra/',
      'tiny-test-cpu/extra/deep/',
      'tiny-test-cpu/extra/deep/note.txt',
      'tiny-test-cpu/extra/empty',
      'tiny-test-cpu/genai_config.json',
      'tiny-test-cpu/manifest.json',
      'tiny-test-cpu/model.onnx',
      'tiny-test-cpu/model.onnx.data',
      'tiny-test-cpu/tokenizer.json',
      'tiny-test-cpu/tokenizer_config.json',
    ]);
    for (const l of listing) {
      const [mode, owner, , date, time] = l.split(/\s+/);
      expect(mode).toBe(l.endsWith('/') ? 'drwxr-xr-x' : '-rw-r--r--');
      expect(owner).toBe('0/0');
      expect(`${date} ${time}`).toBe('1980-01-01 00:00');
    }
    const dest = join(work, 'gnu', 'x');
    await mkdir(dest);
    execFileSync('tar', ['-xzf', file, '-C', dest]);
    expect(await treeDigest(join(dest, 'tiny-test-cpu'))).toEqual(await treeDigest(pkg));
  });

  it("python's tarfile sees ustar headers with uid/gid 0, empty names, the fixed mtime and no pax headers", async () => {
    const file = (await writeTarGz(pkg, join(work, 'py', 'p.tar.gz'))).file;
    const members = python(
      `import tarfile, json, sys, hashlib
with tarfile.open(sys.argv[1], 'r:gz') as t:
    out = []
    for m in t.getmembers():
        data = t.extractfile(m).read() if m.isfile() else b''
        out.append(dict(name=m.name, uid=m.uid, gid=m.gid, uname=m.uname, gname=m.gname, mtime=m.mtime,
                        mode=m.mode, dir=m.isdir(), pax=m.pax_headers, sha=hashlib.sha256(data).hexdigest()))
    print(json.dumps(out))`,
      file,
    ) as { name: string; uid: number; gid: number; uname: string; gname: string; mtime: number; mode: number; dir: boolean; pax: object; sha: string }[];
    const tree = await treeDigest(pkg);
    expect(members.filter((m) => !m.dir).map((m) => [m.name, m.sha])).toEqual(
      [...tree].map(([p, h]) => [`tiny-test-cpu/${p}`, h]),
    );
    for (const m of members) {
      expect(m).toMatchObject({ uid: 0, gid: 0, uname: '', gname: '', mtime: ARCHIVE_EPOCH_SECONDS, pax: {}, mode: m.dir ? 0o755 : 0o644 });
    }
  });

  it('a path too long for ustar gets a pax header carrying only the path', async () => {
    const dir = join(work, 'long');
    const name = 'x'.repeat(120) + '.json';
    await mkdir(dir);
    await writeFile(join(dir, name), '{}');
    const file = (await writeTarGz(dir, join(work, 'long.tar.gz'), { root: '' })).file;
    const members = python(
      `import tarfile, json, sys
with tarfile.open(sys.argv[1], 'r:gz') as t:
    print(json.dumps([dict(name=m.name, pax=m.pax_headers) for m in t.getmembers()]))`,
      file,
    ) as { name: string; pax: Record<string, string> }[];
    expect(members).toEqual([{ name, pax: { path: name } }]);
  });

  it('a file over ustar\'s 8 GiB gets its size in a pax header that tar readers use', async () => {
    // Only the header is written (a real 8 GiB file would take minutes to compress): readers list it without data.
    const size = 2 ** 33 + 5;
    const file = join(work, 'big-header.tar');
    await writeFile(file, tarEntryHeader('p/model.onnx.data', 'file', size));
    const m = python(
      `import tarfile, json, sys
m = tarfile.open(sys.argv[1]).next()
print(json.dumps(dict(name=m.name, size=m.size, pax=m.pax_headers, mtime=m.mtime, uid=m.uid, mode=m.mode)))`,
      file,
    );
    expect(m).toEqual({ name: 'p/model.onnx.data', size, pax: { path: 'p/model.onnx.data', size: String(size) }, mtime: ARCHIVE_EPOCH_SECONDS, uid: 0, mode: 0o644 });
    expect(tarEntryHeader('p/small', 'file', 10)).toHaveLength(512);
  });

  it('does not depend on the time zone of the process (tar and zip)', async () => {
    const script = `
      import { writeTarGz, writeZip } from ${JSON.stringify(join(repoRoot, 'src/package/archive.ts'))};
      const [dir, out] = process.argv.slice(-2);
      const t = await writeTarGz(dir, out + '.tar.gz', { root: 'p' });
      const z = await writeZip(dir, out + '.zip', { root: 'p' });
      process.stdout.write(t.sha256 + ' ' + z.sha256);`;
    const run = (tz: string, out: string) =>
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, pkg, join(work, out)], {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, TZ: tz },
      });
    const tokyo = run('Asia/Tokyo', 'tz-tokyo');
    const ny = run('America/New_York', 'tz-ny');
    expect(tokyo).toMatch(/^[0-9a-f]{64} [0-9a-f]{64}$/);
    expect(ny).toBe(tokyo);
    const here = [(await writeTarGz(pkg, join(work, 'tz-here.tar.gz'), { root: 'p' })).sha256, (await writeZip(pkg, join(work, 'tz-here.zip'), { root: 'p' })).sha256];
    expect(here.join(' ')).toBe(tokyo);
  });

  it('refuses symlinks and missing folders, and leaves no partial file behind', async () => {
    const dir = join(work, 'linked');
    await mkdir(dir);
    await writeFile(join(dir, 'a'), 'a');
    await symlink('a', join(dir, 'b'));
    const outDir = join(work, 'refused');
    await expect(writeTarGz(dir, join(outDir, 'x.tar.gz'))).rejects.toMatchObject({ code: 'ARCHIVE_UNSUPPORTED_ENTRY' });
    await expect(writeZip(dir, join(outDir, 'x.zip'))).rejects.toBeInstanceOf(PackageError);
    await expect(writeTarGz(join(work, 'nope'), join(outDir, 'y.tar.gz'))).rejects.toMatchObject({ code: 'ARCHIVE_NO_DIR' });
    expect(await readdir(outDir).catch(() => [])).toEqual([]);
  });
});

describe('writeZip', () => {
  it('is byte-identical across runs, mtimes and modes', async () => {
    const a = await readFile((await writeZip(pkg, join(work, 'zdet', '1.zip'))).file);
    const copy = join(work, 'zelse', 'tiny-test-cpu');
    await cp(pkg, copy, { recursive: true });
    await utimes(join(copy, 'genai_config.json'), new Date('2029-02-03'), new Date('2029-02-03'));
    await chmod(join(copy, 'model.onnx.data'), 0o700);
    const b = await readFile((await writeZip(copy, join(work, 'zdet', '2.zip'))).file);
    expect(b.equals(a)).toBe(true);
  });

  it("python's zipfile reads it: sorted names, 1980-01-01, unix modes, no extra fields, same contents", async () => {
    const file = (await writeZip(pkg, join(work, 'zpy', 'p.zip'))).file;
    const r = python(
      `import zipfile, json, sys, hashlib
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    out = [dict(name=i.filename, date=list(i.date_time), mode=i.external_attr >> 16, extra=i.extra.hex(),
                deflate=i.compress_type == zipfile.ZIP_DEFLATED, sha=hashlib.sha256(z.read(i)).hexdigest())
           for i in z.infolist()]
    print(json.dumps(dict(bad=bad, entries=out)))`,
      file,
    ) as { bad: string | null; entries: { name: string; date: number[]; mode: number; extra: string; deflate: boolean; sha: string }[] };
    expect(r.bad).toBeNull();
    const files = r.entries.filter((e) => !e.name.endsWith('/'));
    const tree = await treeDigest(pkg);
    expect(files.map((e) => [e.name, e.sha])).toEqual([...tree].map(([p, h]) => [`tiny-test-cpu/${p}`, h]));
    expect(r.entries.map((e) => e.name)).toEqual([...r.entries.map((e) => e.name)].sort());
    for (const e of r.entries) {
      expect(e.date).toEqual([1980, 1, 1, 0, 0, 0]);
      expect(e.extra).toBe('');
      expect(e.mode).toBe(e.name.endsWith('/') ? 0o40755 : 0o100644);
      if (!e.name.endsWith('/')) expect(e.deflate).toBe(true);
    }
  });

  it.runIf(hasUnzip)('unzip lists every file with its size', async () => {
    const file = (await writeZip(pkg, join(work, 'zun', 'p.zip'))).file;
    const listing = execFileSync('unzip', ['-l', file], { encoding: 'utf8' });
    for (const p of (await treeDigest(pkg)).keys()) {
      const size = (await stat(join(pkg, p))).size;
      expect(listing).toMatch(new RegExp(`^\\s*${size}\\s+(?:1980-01-01|01-01-1980) 00:00\\s+tiny-test-cpu/${p.replace(/\./g, '\\.')}$`, 'm'));
    }
  });
});
