import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetFormat, joinRows, parseTokenSequences, readDatasetRows, readDatasetText, readTokensFile } from '../../src/eval/datasets.js';
import { EvalError } from '../../src/util/errors.js';
import { writeParquet } from '../helpers/parquet-writer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-datasets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Rows shaped like wikitext-2's test split: headings, paragraphs and empty strings for blank lines.
const WIKI_ROWS = ['', ' = Robert Boulter = \n', '', ' Robert Boulter is an English film , television and theatre actor . \n', '', ' Ünïcödé — ok \n'];

describe('datasetFormat', () => {
  it('goes by extension', () => {
    expect(datasetFormat('a/test-00000-of-00001.parquet')).toBe('parquet');
    expect(datasetFormat('x.JSONL')).toBe('jsonl');
    expect(datasetFormat('x.ndjson')).toBe('jsonl');
    expect(datasetFormat('wiki.test.raw')).toBe('text');
  });
});

describe('plain text and JSONL', () => {
  it('reads a text file as one row', async () => {
    const f = join(dir, 'a.txt');
    await writeFile(f, 'hello\n\nworld\n');
    expect(await readDatasetRows(f)).toEqual(['hello\n\nworld\n']);
  });

  it('reads the text field of each JSONL line, or --column', async () => {
    const f = join(dir, 'a.jsonl');
    await writeFile(f, '{"text": "one", "body": "x"}\n\n{"text": "two", "body": "y"}\n');
    expect(await readDatasetRows(f)).toEqual(['one', 'two']);
    expect(await readDatasetRows(f, { column: 'body' })).toEqual(['x', 'y']);
    expect(await readDatasetText(f)).toBe('one\n\ntwo');
  });

  it('names the line and the available fields when the column is missing', async () => {
    const f = join(dir, 'b.jsonl');
    await writeFile(f, '{"text": "one"}\n{"content": "two"}\n');
    const err = await readDatasetRows(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EvalError);
    expect((err as EvalError).code).toBe('DATASET_COLUMN');
    expect((err as Error).message).toMatch(/line 2/);
    expect((err as Error).message).toMatch(/content/);
  });

  it('rejects a line that is not JSON', async () => {
    const f = join(dir, 'c.jsonl');
    await writeFile(f, '{"text": "one"}\nnot json\n');
    await expect(readDatasetRows(f)).rejects.toMatchObject({ code: 'DATASET_JSONL' });
  });

  it('reports a missing file as EvalError', async () => {
    await expect(readDatasetRows(join(dir, 'nope.txt'))).rejects.toMatchObject({ code: 'DATASET_NOT_FOUND' });
  });
});

describe('parquet (hyparquet + hyparquet-compressors)', () => {
  for (const codec of ['UNCOMPRESSED', 'GZIP', 'BROTLI'] as const) {
    it(`reads a ${codec} string column and joins rows with blank lines (wikitext convention)`, async () => {
      const f = join(dir, `wiki-${codec}.parquet`);
      await writeFile(f, writeParquet({ name: 'text', values: WIKI_ROWS, codec }));
      expect(await readDatasetRows(f)).toEqual(WIKI_ROWS);
      expect(await readDatasetText(f)).toBe(WIKI_ROWS.join('\n\n'));
    });
  }

  it('picks --column among several and skips null rows', async () => {
    const f = join(dir, 'two-cols.parquet');
    await writeFile(
      f,
      writeParquet({ name: 'content', values: ['a', null, 'b'], optional: true, codec: 'GZIP', extraInt32Column: { name: 'id', values: [7, 8, 9] } }),
    );
    expect(await readDatasetRows(f, { column: 'content' })).toEqual(['a', 'b']);
    const err = await readDatasetRows(f).catch((e: unknown) => e);
    expect((err as EvalError).code).toBe('DATASET_COLUMN');
    expect((err as Error).message).toMatch(/content, id/);
    await expect(readDatasetRows(f, { column: 'id' })).rejects.toMatchObject({ code: 'DATASET_COLUMN' });
  });

  it('says clearly when the file is not parquet (e.g. a Git LFS pointer)', async () => {
    const f = join(dir, 'pointer.parquet');
    await writeFile(f, 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
    await expect(readDatasetRows(f)).rejects.toMatchObject({ code: 'DATASET_PARQUET' });
  });
});

describe('joinRows', () => {
  it('puts exactly one blank line between rows', () => {
    expect(joinRows(['a', '', 'b'])).toBe('a\n\n\n\nb');
  });
});

describe('tokens files', () => {
  it('reads {"tokens": [...]} as one sequence and [[...], ...] as several', async () => {
    const one = join(dir, 'one.json');
    await writeFile(one, '{"tokens": [1, 5, 9]}');
    expect((await readTokensFile(one)).map((s) => Array.from(s))).toEqual([[1, 5, 9]]);
    const many = join(dir, 'many.json');
    await writeFile(many, '[[1, 2], [1, 3, 4]]');
    const seqs = await readTokensFile(many);
    expect(seqs.map((s) => Array.from(s))).toEqual([[1, 2], [1, 3, 4]]);
    expect(seqs[0]).toBeInstanceOf(Int32Array);
  });

  it('rejects other shapes and non-ids with the position', () => {
    expect(() => parseTokenSequences({ ids: [1] })).toThrow(/expected/);
    expect(() => parseTokenSequences([])).toThrow(EvalError);
    expect(() => parseTokenSequences([[1, 2], [3, -1]])).toThrow(/sequence 1, token 1/);
    expect(() => parseTokenSequences([[1, 2.5]])).toThrow(/token 1/);
    expect(() => parseTokenSequences([[1], 'x'])).toThrow(/sequence 1/);
  });
});
