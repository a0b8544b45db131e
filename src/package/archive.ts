// Reproducible release archives of a package folder: .tar.gz (node-tar's ustar header encoder + zlib) and .zip
// (yazl). Same file names and contents → byte-identical archive, whatever the files' mtimes, owners and modes, the
// user running it, the time zone or the order the file system lists entries in. File data is streamed.
// Why not tar.create(): it copies modes and owners from disk, names the owner after $USER for the caller's own
// files, turns files with several links into hard-link entries and walks folders in readdir order: each leaks the
// machine into the bytes. node-tar's Header/Pax encoders, given fields we choose, leak nothing.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { Header, Pax } from 'tar';
import yazl from 'yazl';
import { tempSibling } from '../util/atomic-fs.js';
import { PackageError } from '../util/errors.js';

/**
 * The one timestamp every entry carries: 1980-01-01T00:00:00Z (315532800), the smallest date a zip's DOS
 * timestamp can hold, used for the tar too so both archives say the same.
 */
export const ARCHIVE_EPOCH_SECONDS = 315532800;
export const FILE_MODE = 0o644;
export const DIR_MODE = 0o755;
/** zlib's default level, fixed so the deflate streams never depend on a caller's choice. */
export const DEFLATE_LEVEL = 6;
/** gzip header OS byte: 255 "unknown" (zlib writes 3 on Unix and 10 on Windows; node-tar's `portable` writes 255). */
const GZIP_OS_UNKNOWN = 255;

export interface ArchiveOptions {
  /** Top-level folder inside the archive (default: the folder's own name). '' puts the files at the top. */
  root?: string;
}

export interface ArchiveResult {
  file: string;
  bytes: number;
  sha256: string;
  /** Files archived (directories not counted). */
  files: number;
}

interface Entry {
  /** '/'-separated path inside the archive; directories end with '/'. */
  name: string;
  kind: 'file' | 'dir';
  abs: string;
  size: number;
}

/** Writes `<dir>` as a reproducible gzip-compressed ustar archive at outFile (atomically: temp file + rename). */
export async function writeTarGz(dir: string, outFile: string, opts: ArchiveOptions = {}): Promise<ArchiveResult> {
  const entries = await listEntries(dir, opts.root ?? basename(dir));
  const source = Readable.from(tarBlocks(entries), { objectMode: false });
  const gzip = createGzip({ level: DEFLATE_LEVEL });
  const result = await writeAtomically(outFile, (sink) => pipeline(source, gzip, new GzipOsByte(), sink));
  return { ...result, files: entries.filter((e) => e.kind === 'file').length };
}

/** Writes `<dir>` as a reproducible zip (deflate, fixed DOS timestamp, unix modes) at outFile, atomically. */
export async function writeZip(dir: string, outFile: string, opts: ArchiveOptions = {}): Promise<ArchiveResult> {
  const entries = await listEntries(dir, opts.root ?? basename(dir));
  // yazl turns a Date into DOS date/time fields with the *local* calendar, so the date is built from local fields;
  // forceDosTimestamp leaves out the UTC "extended timestamp" field that would then vary with the time zone.
  const epoch = new Date(ARCHIVE_EPOCH_SECONDS * 1000);
  const mtime = new Date(epoch.getUTCFullYear(), epoch.getUTCMonth(), epoch.getUTCDate(), 0, 0, 0);
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.kind === 'dir') {
      zip.addEmptyDirectory(e.name, { mtime, mode: 0o040000 | DIR_MODE, forceDosTimestamp: true });
    } else {
      zip.addFile(e.abs, e.name, { mtime, mode: 0o100000 | FILE_MODE, compress: true, compressionLevel: DEFLATE_LEVEL, forceDosTimestamp: true });
    }
  }
  const result = await writeAtomically(outFile, async (sink) => {
    const failed = new Promise<never>((_, reject) => zip.once('error', reject));
    zip.end();
    await Promise.race([pipeline(zip.outputStream as NodeJS.ReadableStream, sink), failed]);
  });
  return { ...result, files: entries.filter((e) => e.kind === 'file').length };
}

/** Every file and folder under dir, sorted by path bytes (a parent always before its contents), under `root`. */
async function listEntries(dir: string, root: string): Promise<Entry[]> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new PackageError('ARCHIVE_NO_DIR', 'not a folder: nothing to archive', { file: dir, fix: 'pass a package folder' });
  }
  if (root.includes('/') || root === '.' || root === '..') {
    throw new PackageError('ARCHIVE_BAD_ROOT', `the archive's top folder must be a plain name, got "${root}"`);
  }
  const out: Entry[] = [];
  const prefix = root ? `${root}/` : '';
  if (root) out.push({ name: prefix, kind: 'dir', abs: dir, size: 0 });
  const walk = async (abs: string, rel: string) => {
    for (const name of await readdir(abs)) {
      const p = join(abs, name);
      const s = await lstat(p);
      const r = rel + name;
      if (s.isDirectory()) {
        out.push({ name: `${prefix}${r}/`, kind: 'dir', abs: p, size: 0 });
        await walk(p, `${r}/`);
      } else if (s.isFile()) {
        out.push({ name: prefix + r, kind: 'file', abs: p, size: s.size });
      } else {
        // A symlink or device would make the archive depend on things outside the folder.
        throw new PackageError('ARCHIVE_UNSUPPORTED_ENTRY', 'only regular files and folders can be archived', {
          file: p,
          fix: 'replace the link with a copy of the file',
        });
      }
    }
  };
  await walk(dir, '');
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

/**
 * The header block(s) of one tar entry: a ustar header with the fixed owner, mode and mtime, preceded by a pax
 * header when the path is too long (> 100 bytes unsplittable) or not ASCII, or the size is over ustar's 8 GiB. The
 * pax header carries only those fields, never times.
 */
export function tarEntryHeader(name: string, kind: 'file' | 'dir', size: number): Buffer {
  const header = new Header({
    path: name,
    mode: kind === 'dir' ? DIR_MODE : FILE_MODE,
    uid: 0,
    gid: 0,
    size,
    mtime: new Date(ARCHIVE_EPOCH_SECONDS * 1000),
    type: kind === 'dir' ? 'Directory' : 'File',
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
  });
  if (!header.encode()) return header.block!;
  // node-tar falls back to base-256 for an oversized size field; the pax `size` is what every reader understands.
  const pax = new Pax({ path: name, size: size > USTAR_MAX_SIZE ? size : undefined });
  return Buffer.concat([pax.encode(), header.block!]);
}

/** The largest size ustar's 11 octal digits hold (8 GiB − 1); a multi-GB model.onnx.data can exceed it. */
const USTAR_MAX_SIZE = 0o77777777777;

/** The tar stream: per entry its header block(s), its data and padding to 512 bytes; two zero blocks at the end. */
async function* tarBlocks(entries: readonly Entry[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    yield tarEntryHeader(e.name, e.kind, e.size);
    if (e.kind === 'dir' || e.size === 0) continue;
    let read = 0;
    // `end` bounds the read, so a file that grows while it is archived cannot overflow its header's size.
    for await (const chunk of createReadStream(e.abs, { start: 0, end: e.size - 1, highWaterMark: 1 << 20 })) {
      read += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (read !== e.size) {
      throw new PackageError('ARCHIVE_FILE_CHANGED', `the file shrank from ${e.size} to ${read} bytes while it was archived`, {
        file: e.abs,
        fix: 'do not modify a package while it is being released; run again',
      });
    }
    const pad = (512 - (e.size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

/** Sets the gzip header's OS byte (offset 9) to a constant, so the archive does not depend on the platform. */
class GzipOsByte extends Transform {
  private seen = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen <= 9 && this.seen + chunk.length > 9) {
      chunk = Buffer.from(chunk);
      chunk[9 - this.seen] = GZIP_OS_UNKNOWN;
    }
    this.seen += chunk.length;
    cb(null, chunk);
  }
}

/** Streams into a temporary sibling of outFile, hashing on the way, then fsyncs and renames it into place. */
async function writeAtomically(
  outFile: string,
  write: (sink: NodeJS.WritableStream) => Promise<unknown>,
): Promise<Omit<ArchiveResult, 'files'>> {
  await mkdir(dirname(outFile), { recursive: true });
  const tmp = tempSibling(outFile);
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    const done = pipeline(tap, createWriteStream(tmp));
    // Awaited below; a failure of `write` settles it too (the tap is destroyed), and must not go unhandled.
    done.catch(() => undefined);
    await write(tap);
    await done;
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, outFile);
  } catch (e) {
    tap.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
  return { file: outFile, bytes, sha256: hash.digest('hex') };
}
