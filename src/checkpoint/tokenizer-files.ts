// Tokenizer files of a checkpoint folder: which are there, and copying them verbatim into a package.
import { copyFile, mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { tempSibling } from '../util/atomic-fs.js';
import { CheckpointError } from '../util/errors.js';

/**
 * The files transformers' tokenizers and onnxruntime-genai read, in a stable order: fast tokenizer, its config and
 * special tokens, SentencePiece model, added tokens, BPE/WordPiece vocabularies, and the chat template files.
 */
export const TOKENIZER_FILE_NAMES = Object.freeze([
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
  'chat_template.jinja',
  'chat_template.json',
] as const);

/** Absolute paths of the tokenizer files present (regular files) in `dir`, in TOKENIZER_FILE_NAMES order. */
export async function findTokenizerFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of TOKENIZER_FILE_NAMES) {
    const p = join(dir, name);
    const s = await stat(p).catch(() => undefined);
    if (s?.isFile()) found.push(p);
  }
  return found;
}

/**
 * Copies the files byte for byte into `destDir` under their own names (each through a temporary sibling and a
 * rename, so a destination file is never half-written). Returns the destination paths.
 */
export async function copyTokenizerFiles(files: readonly string[], destDir: string): Promise<string[]> {
  const names = new Set<string>();
  for (const f of files) {
    const n = basename(f);
    if (names.has(n)) {
      throw new CheckpointError('TOKENIZER_DUPLICATE', `two tokenizer files are named ${n}`, {
        file: f,
        fix: 'copy tokenizer files from one folder at a time',
      });
    }
    names.add(n);
  }
  await mkdir(destDir, { recursive: true });
  const out: string[] = [];
  for (const f of files) {
    const dest = join(destDir, basename(f));
    const tmp = tempSibling(dest);
    try {
      await copyFile(f, tmp);
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { force: true });
      const code = (e as NodeJS.ErrnoException).code;
      throw new CheckpointError('TOKENIZER_COPY', `cannot copy tokenizer file (${code ?? (e as Error).message})`, {
        file: f,
        fix: code === 'ENOENT' ? 'the tokenizer file is missing from the checkpoint folder: download it again' : 'check permissions and free space',
        cause: e,
      });
    }
    out.push(dest);
  }
  return out;
}

/** True when the folder has a tokenizer onnxruntime-genai can load (tokenizer.json, or a SentencePiece model). */
export function hasUsableTokenizer(files: readonly string[]): boolean {
  return files.some((f) => basename(f) === 'tokenizer.json' || basename(f) === 'tokenizer.model');
}
