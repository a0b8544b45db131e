import { open, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/checkpoint/safetensors.js';
import { CheckpointError } from '../../src/util/errors.js';
import {
  buildSafetensorsBytes,
  f32,
  f64,
  i64,
  layoutSafetensors,
  makeTempDir,
  removeTempDir,
  u16,
} from '../helpers/checkpoint.js';

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await makeTempDir('phi-forge-st-read-');
});
afterAll(async () => {
  await removeTempDir(dir);
});

async function fileWith(bytes: Uint8Array): Promise<string> {
  const p = join(dir, `f${n++}.safetensors`);
  await writeFile(p, bytes);
  return p;
}

/** Opens the file and returns the CheckpointError it must throw. */
async function openError(bytes: Uint8Array): Promise<CheckpointError & { path: string }> {
  const p = await fileWith(bytes);
  const e = await SafetensorsFile.open(p).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CheckpointError);
  const ce = e as CheckpointError;
  expect(ce.file).toBe(p);
  expect(ce.fix).toBeTruthy();
  return Object.assign(ce, { path: p });
}

describe('reading', () => {
  it('reads every dtype by offset, with exact bytes and absolute offsets', async () => {
    const tensors = [
      { name: 'a.f32', dtype: 'F32', shape: [2, 2], bytes: f32([1, -2, 0.5, 3]) },
      { name: 'b.i64', dtype: 'I64', shape: [3], bytes: i64([-1, 0, 2 ** 40]) },
      { name: 'c.u8', dtype: 'U8', shape: [5], bytes: Uint8Array.from([0, 1, 127, 128, 255]) },
      { name: 'd.empty', dtype: 'F16', shape: [0, 4], bytes: new Uint8Array(0) },
      { name: 'e.bool', dtype: 'BOOL', shape: [2], bytes: Uint8Array.from([1, 0]) },
      { name: 'f.scalar', dtype: 'F32', shape: [], bytes: f32([7]) },
    ];
    const bytes = layoutSafetensors(tensors, { format: 'pt', note: 'x' });
    const p = await fileWith(bytes);
    const f = await SafetensorsFile.open(p);
    try {
      expect(f.metadata).toEqual({ format: 'pt', note: 'x' });
      expect([...f.entries.keys()]).toEqual(tensors.map((t) => t.name));
      const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      let off = 8 + headerLen;
      for (const t of tensors) {
        const e = f.entries.get(t.name)!;
        expect(e).toEqual({ name: t.name, dtype: t.dtype, shape: t.shape, begin: off, end: off + t.bytes.byteLength });
        expect(await f.readRaw(t.name)).toEqual(t.bytes);
        // the entry's offsets point at the same bytes in the file
        expect(bytes.subarray(e.begin, e.end)).toEqual(t.bytes);
        off += t.bytes.byteLength;
      }
      expect(Array.from(await f.readFloat32('a.f32'))).toEqual([1, -2, 0.5, 3]);
      expect(Array.from(await f.readFloat32('f.scalar'))).toEqual([7]);
      expect((await f.readFloat32('d.empty')).length).toBe(0);
      expect(await f.readRange('a.f32', 4, 8)).toEqual(f32([-2, 0.5]));
    } finally {
      await f.close();
    }
  });

  it('converts fp16 to fp32 (hand-computed values)', async () => {
    const bits = [0x0000, 0x8000, 0x3c00, 0xc000, 0x3555, 0x7bff, 0x0400, 0x0001, 0x7c00, 0xfc00, 0x7e00];
    const want = [0, -0, 1, -2, 0.333251953125, 65504, 2 ** -14, 2 ** -24, Infinity, -Infinity, NaN];
    const p = await fileWith(layoutSafetensors([{ name: 'h', dtype: 'F16', shape: [bits.length], bytes: u16(bits) }]));
    const f = await SafetensorsFile.open(p);
    const got = Array.from(await f.readFloat32('h'));
    await f.close();
    expect(got).toEqual(want);
    expect(Object.is(got[1], -0)).toBe(true);
  });

  it('converts bf16 to fp32 (hand-computed values)', async () => {
    const bits = [0x3f80, 0xc040, 0x4049, 0x7f7f, 0x0001, 0xff80, 0x7fc0, 0x8000];
    const want = [1, -3, 3.140625, 3.3895313892515355e38, 9.183549615799121e-41, -Infinity, NaN, -0];
    const p = await fileWith(layoutSafetensors([{ name: 'b', dtype: 'BF16', shape: [2, 4], bytes: u16(bits) }]));
    const f = await SafetensorsFile.open(p);
    const got = Array.from(await f.readFloat32('b'));
    await f.close();
    expect(got).toEqual(want);
  });

  it('converts f64 to fp32 by rounding to nearest', async () => {
    const p = await fileWith(layoutSafetensors([{ name: 'd', dtype: 'F64', shape: [3], bytes: f64([1 / 3, -2.5, 1e40]) }]));
    const f = await SafetensorsFile.open(p);
    const got = Array.from(await f.readFloat32('d'));
    await f.close();
    expect(got).toEqual([0.3333333432674408, -2.5, Infinity]);
  });

  it('refuses float conversion of integer tensors, unknown names and ranges outside the tensor', async () => {
    const p = await fileWith(layoutSafetensors([{ name: 'ids', dtype: 'I64', shape: [1], bytes: i64([5]) }]));
    const f = await SafetensorsFile.open(p);
    await expect(f.readFloat32('ids')).rejects.toMatchObject({ code: 'SAFETENSORS_NOT_FLOAT', where: 'tensor ids', file: p });
    await expect(f.readRaw('nope')).rejects.toMatchObject({ code: 'SAFETENSORS_NOT_FOUND', where: 'tensor nope' });
    await expect(f.readRange('ids', 4, 8)).rejects.toMatchObject({ code: 'SAFETENSORS_RANGE' });
    await f.close();
  });

  it('opens no handle until a read, reopens after close, and fails clearly when the file changed size', async () => {
    const p = await fileWith(layoutSafetensors([{ name: 'x', dtype: 'F32', shape: [4], bytes: f32([1, 2, 3, 4]) }]));
    const f = await SafetensorsFile.open(p);
    await f.close(); // nothing opened: close is a no-op
    expect(Array.from(await f.readFloat32('x'))).toEqual([1, 2, 3, 4]);
    await f.close();
    expect(Array.from(await f.readFloat32('x'))).toEqual([1, 2, 3, 4]);
    await f.close();
    await truncate(p, f.size - 4);
    await expect(f.readRaw('x')).rejects.toMatchObject({ code: 'SAFETENSORS_CHANGED', file: p });
  });

  it('reads a tensor that lies beyond 2 GiB (positions are plain numbers; sparse 3 GiB file)', async () => {
    const big = 3 * 2 ** 30;
    const header = {
      big: { dtype: 'U8', shape: [big], data_offsets: [0, big] },
      tail: { dtype: 'F32', shape: [4], data_offsets: [big, big + 16] },
    };
    const head = buildSafetensorsBytes(header, new Uint8Array(0));
    const p = join(dir, 'sparse.safetensors');
    const fh = await open(p, 'w');
    try {
      await fh.write(head, 0, head.byteLength, 0);
      await fh.write(f32([1.5, -1, 2 ** 20, 0.25]), 0, 16, head.byteLength + big);
    } finally {
      await fh.close();
    }
    const f = await SafetensorsFile.open(p);
    expect(f.entries.get('tail')!.begin).toBe(head.byteLength + big);
    expect(Array.from(await f.readFloat32('tail'))).toEqual([1.5, -1, 2 ** 20, 0.25]);
    expect(Array.from(await f.readRange('big', big - 2, 2))).toEqual([0, 0]);
    await f.close();
    await truncate(p, 0);
  });
});

describe('validation (each failure is a CheckpointError with a code, the file, the tensor and a fix)', () => {
  const ok = () => ({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });

  it('file shorter than the 8-byte length', async () => {
    const e = await openError(Uint8Array.from([1, 2, 3]));
    expect(e.code).toBe('SAFETENSORS_TRUNCATED');
  });

  it('empty file', async () => {
    expect((await openError(new Uint8Array(0))).code).toBe('SAFETENSORS_TRUNCATED');
  });

  it('header length larger than the file', async () => {
    const bytes = buildSafetensorsBytes(ok(), f32([1, 2]), { headerLength: 4096n });
    expect((await openError(bytes)).code).toBe('SAFETENSORS_HEADER_LENGTH');
  });

  it('truncated data region', async () => {
    const bytes = buildSafetensorsBytes(ok(), f32([1, 2]));
    const e = await openError(bytes.subarray(0, bytes.byteLength - 3));
    expect(e.code).toBe('SAFETENSORS_INCOMPLETE');
    expect(e.message).toMatch(/tensors cover 8 data bytes but the file holds 5/);
  });

  it('header length over the 100 MB limit (and the u64 maximum)', async () => {
    expect((await openError(buildSafetensorsBytes(ok(), f32([1, 2]), { headerLength: 100_000_001n }))).code).toBe(
      'SAFETENSORS_HEADER_TOO_LARGE',
    );
    expect((await openError(buildSafetensorsBytes(ok(), f32([1, 2]), { headerLength: 2n ** 64n - 1n }))).code).toBe(
      'SAFETENSORS_HEADER_TOO_LARGE',
    );
  });

  it('bad JSON, not an object, not UTF-8', async () => {
    expect((await openError(buildSafetensorsBytes({}, new Uint8Array(0), { headerText: '{"w": {"dtype": "F32",' }))).code).toBe(
      'SAFETENSORS_HEADER_JSON',
    );
    expect((await openError(buildSafetensorsBytes({}, new Uint8Array(0), { headerText: '[1, 2]' }))).code).toBe('SAFETENSORS_HEADER_JSON');
    const notUtf8 = buildSafetensorsBytes({}, new Uint8Array(0), { headerText: '{}' });
    notUtf8[9] = 0xff;
    expect((await openError(notUtf8)).code).toBe('SAFETENSORS_HEADER_UTF8');
  });

  it('__metadata__ with a non-string value', async () => {
    const e = await openError(buildSafetensorsBytes({ __metadata__: { format: 1 }, ...ok() }, f32([1, 2])));
    expect(e.code).toBe('SAFETENSORS_METADATA');
  });

  it('unknown dtype', async () => {
    const e = await openError(buildSafetensorsBytes({ w: { dtype: 'F128', shape: [2], data_offsets: [0, 8] } }, f32([1, 2])));
    expect(e.code).toBe('SAFETENSORS_DTYPE');
    expect(e.where).toBe('tensor w');
    expect(e.fix).toMatch(/BF16/);
  });

  it('negative or fractional shape', async () => {
    for (const shape of [[-2], [2.5], ['2'], 2]) {
      const e = await openError(buildSafetensorsBytes({ w: { dtype: 'F32', shape, data_offsets: [0, 8] } }, f32([1, 2])));
      expect(e.code).toBe('SAFETENSORS_SHAPE');
      expect(e.where).toBe('tensor w');
    }
  });

  it('shape × dtype size does not match the offsets', async () => {
    const e = await openError(buildSafetensorsBytes({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32([1, 2])));
    expect(e.code).toBe('SAFETENSORS_SIZE_MISMATCH');
    expect(e.where).toBe('tensor w');
    expect(e.message).toMatch(/needs 12/);
  });

  it('overlapping tensors', async () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    const e = await openError(buildSafetensorsBytes(header, new Uint8Array(12)));
    expect(e.code).toBe('SAFETENSORS_OFFSETS');
    expect(e.where).toBe('tensor b');
    expect(e.message).toMatch(/overlaps/);
  });

  it('a gap between tensors', async () => {
    const header = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    };
    const e = await openError(buildSafetensorsBytes(header, new Uint8Array(12)));
    expect(e.code).toBe('SAFETENSORS_OFFSETS');
    expect(e.message).toMatch(/gap of 4 bytes/);
  });

  it('offsets past the end of the file, and trailing bytes after the last tensor', async () => {
    const past = await openError(
      buildSafetensorsBytes({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32([1, 2])),
    );
    expect(past.code).toBe('SAFETENSORS_INCOMPLETE');
    const trailing = await openError(buildSafetensorsBytes(ok(), f32([1, 2, 3])));
    expect(trailing.code).toBe('SAFETENSORS_INCOMPLETE');
  });

  it('malformed data_offsets', async () => {
    for (const data_offsets of [[8, 0], [0], [0, 8, 9], [-8, 0], 'x', [0, 2 ** 60]]) {
      const e = await openError(buildSafetensorsBytes({ w: { dtype: 'U8', shape: [8], data_offsets } }, new Uint8Array(8)));
      expect(['SAFETENSORS_OFFSETS', 'SAFETENSORS_SIZE_MISMATCH']).toContain(e.code);
    }
  });

  it('an entry that is not an object', async () => {
    expect((await openError(buildSafetensorsBytes({ w: [1, 2] }, new Uint8Array(0)))).code).toBe('SAFETENSORS_ENTRY');
  });

  it('a missing file', async () => {
    const p = join(dir, 'missing.safetensors');
    await expect(SafetensorsFile.open(p)).rejects.toMatchObject({ code: 'SAFETENSORS_OPEN', file: p });
  });

  it('accepts what the reference implementation accepts: no tensors, tensors listed out of offset order', async () => {
    const empty = await SafetensorsFile.open(await fileWith(buildSafetensorsBytes({}, new Uint8Array(0))));
    expect(empty.entries.size).toBe(0);
    const header = {
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
    };
    const f = await SafetensorsFile.open(await fileWith(buildSafetensorsBytes(header, f32([10, 20]))));
    expect(Array.from(await f.readFloat32('a'))).toEqual([10]);
    expect(Array.from(await f.readFloat32('b'))).toEqual([20]);
    await f.close();
  });
});
