// Evaluation inputs: token files (`{"tokens": [...]}` or `[[...], ...]`) and text datasets — a plain text file, a
// JSONL file with a text field, or a parquet file (e.g. the wikitext-2 test split from the hub) read with hyparquet.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { EvalError } from '../util/errors.js';

export type DatasetFormat = 'text' | 'jsonl' | 'parquet';

export interface DatasetOptions {
  /** Field (JSONL) or column (parquet) holding the text. Default "text". */
  column?: string;
  /** Default: from the extension (.parquet, .jsonl/.ndjson, anything else is plain text). */
  format?: DatasetFormat;
}

/** The format a dataset path implies. */
export function datasetFormat(path: string): DatasetFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.parquet') return 'parquet';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  return 'text';
}

/**
 * The dataset's rows of text: the whole file for plain text, one per JSONL line or parquet row (null rows skipped;
 * empty strings kept, as wikitext's blank lines are part of its text).
 */
export async function readDatasetRows(path: string, opts: DatasetOptions = {}): Promise<string[]> {
  const format = opts.format ?? datasetFormat(path);
  const column = opts.column ?? 'text';
  if (format === 'parquet') return readParquetColumn(path, column);
  const text = await readText(path);
  if (format === 'text') return [text];
  return parseJsonl(text, column, path);
}

/**
 * The rows as one text, joined with a blank line between rows — the convention for wikitext-2 perplexity
 * (`"\n\n".join(test["text"])` in transformers' guide and most evaluation scripts).
 */
export function joinRows(rows: readonly string[]): string {
  return rows.join('\n\n');
}

/** Reads a dataset and joins its rows (see joinRows). */
export async function readDatasetText(path: string, opts: DatasetOptions = {}): Promise<string> {
  return joinRows(await readDatasetRows(path, opts));
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new EvalError('DATASET_NOT_FOUND', `cannot read the dataset: ${(e as Error).message}`, {
      file: path,
      fix: 'pass a plain text, .jsonl or .parquet file',
      cause: e,
    });
  }
}

function parseJsonl(text: string, column: string, path: string): string[] {
  const rows: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new EvalError('DATASET_JSONL', `line ${i + 1} is not JSON: ${(e as Error).message}`, {
        file: path,
        fix: 'each line of a .jsonl file must be one JSON object',
      });
    }
    const value = obj && typeof obj === 'object' && !Array.isArray(obj) ? (obj as Record<string, unknown>)[column] : undefined;
    if (typeof value !== 'string') {
      const keys = obj && typeof obj === 'object' && !Array.isArray(obj) ? Object.keys(obj) : [];
      throw new EvalError('DATASET_COLUMN', `line ${i + 1} has no string field "${column}"`, {
        file: path,
        fix: keys.length ? `pass --column with one of: ${keys.join(', ')}` : 'each line must be an object with a text field',
      });
    }
    rows.push(value);
  }
  return rows;
}

async function readParquetColumn(path: string, column: string): Promise<string[]> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetSchema, parquetReadObjects } = await import('hyparquet');
  const { compressors } = await import('hyparquet-compressors');
  let file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  try {
    file = await asyncBufferFromFile(path);
  } catch (e) {
    throw new EvalError('DATASET_NOT_FOUND', `cannot read the dataset: ${(e as Error).message}`, { file: path, cause: e });
  }
  let columns: string[];
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
    columns = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (e) {
    throw new EvalError('DATASET_PARQUET', `not a readable parquet file: ${(e as Error).message}`, {
      file: path,
      fix: 'download the dataset\'s .parquet file again (a Git LFS pointer or truncated download is not parquet)',
      cause: e,
    });
  }
  if (!columns.includes(column)) {
    throw new EvalError('DATASET_COLUMN', `the parquet file has no column "${column}"`, {
      file: path,
      fix: `pass --column with one of: ${columns.join(', ')}`,
    });
  }
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file, metadata, columns: [column], compressors });
  } catch (e) {
    throw new EvalError('DATASET_PARQUET', `cannot decode column "${column}": ${(e as Error).message}`, { file: path, cause: e });
  }
  const out: string[] = [];
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i][column];
    if (v === null || v === undefined) continue;
    if (typeof v !== 'string') {
      throw new EvalError('DATASET_COLUMN', `column "${column}" holds ${typeof v} values, not text (row ${i})`, {
        file: path,
        fix: 'pass --column naming a string column',
      });
    }
    out.push(v);
  }
  return out;
}

/**
 * A tokens file: `{"tokens": [ids...]}` (one sequence) or `[[ids...], ...]`. Ids must be non-negative integers;
 * the model checks they are inside its vocabulary.
 */
export async function readTokensFile(path: string): Promise<Int32Array[]> {
  const text = await readText(path);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new EvalError('TOKENS_JSON', `not valid JSON: ${(e as Error).message}`, {
      file: path,
      fix: 'write {"tokens": [1, 2, 3]} or [[1, 2, 3], [1, 4]]',
    });
  }
  return parseTokenSequences(raw, path);
}

export function parseTokenSequences(raw: unknown, path = '<tokens>'): Int32Array[] {
  let lists: unknown[];
  if (Array.isArray(raw)) lists = raw;
  else if (raw && typeof raw === 'object' && Array.isArray((raw as { tokens?: unknown }).tokens)) lists = [(raw as { tokens: unknown[] }).tokens];
  else {
    throw new EvalError('TOKENS_SHAPE', 'expected {"tokens": [ids...]} or [[ids...], ...]', { file: path });
  }
  if (lists.length === 0) throw new EvalError('TOKENS_EMPTY', 'the file holds no sequences', { file: path });
  return lists.map((l, s) => {
    if (!Array.isArray(l)) {
      throw new EvalError('TOKENS_SHAPE', `sequence ${s} is not an array of token ids`, {
        file: path,
        fix: 'write {"tokens": [ids...]} or [[ids...], ...]',
      });
    }
    const out = new Int32Array(l.length);
    for (let i = 0; i < l.length; i++) {
      const v = l[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
        throw new EvalError('TOKENS_VALUE', `sequence ${s}, token ${i} is ${JSON.stringify(v)}, not a token id`, { file: path });
      }
      out[i] = v;
    }
    return out;
  });
}
