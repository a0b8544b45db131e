// withFileLock: one holder at a time, in this process and across processes; a lock left by a dead process (or left
// empty) is taken over; waiting stops on abort.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withFileLock } from '../../src/util/file-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A node process that takes the lock, writes `<lock>.held`, holds the lock for `ms`, writes `<lock>.released`, exits. */
function holder(lock: string, ms: number) {
  const src = `
    const { withFileLock } = await import(${JSON.stringify(new URL('../../src/util/file-lock.ts', import.meta.url).href)});
    const { writeFile } = await import('node:fs/promises');
    await withFileLock(${JSON.stringify(lock)}, async () => {
      await writeFile(${JSON.stringify(`${lock}.held`)}, 'yes');
      await new Promise((r) => setTimeout(r, ${ms}));
      await writeFile(${JSON.stringify(`${lock}.released`)}, 'yes');
    });`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', src], { stdio: 'inherit' });
}

const exists = async (p: string) => (await readFile(p).catch(() => undefined)) !== undefined;

describe('withFileLock', () => {
  it('runs holders one at a time and removes the lock after each', async () => {
    const lock = join(dir, 'a', 'x.lock');
    let active = 0;
    let peak = 0;
    let runs = 0;
    await Promise.all(
      [0, 1, 2].map(() =>
        withFileLock(
          lock,
          async () => {
            active++;
            peak = Math.max(peak, active);
            expect((await readFile(lock, 'utf8')).trim()).toBe(String(process.pid));
            await sleep(30);
            runs++;
            active--;
          },
          { pollMs: 5 },
        ),
      ),
    );
    expect([peak, runs]).toEqual([1, 3]);
    expect(await exists(lock)).toBe(false);
  });

  it('waits for another process that holds the lock', async () => {
    const lock = join(dir, 'x.lock');
    const child = holder(lock, 700);
    const exited = new Promise((r) => child.on('exit', r));
    for (let i = 0; i < 300 && !(await exists(`${lock}.held`)); i++) await sleep(50);
    let waitedFor: number | undefined;
    let releasedFirst = false;
    await withFileLock(
      lock,
      async () => {
        releasedFirst = await exists(`${lock}.released`);
      },
      { pollMs: 20, onWait: (pid) => (waitedFor = pid) },
    );
    expect(waitedFor).toBe(child.pid);
    expect(releasedFirst).toBe(true);
    await exited;
    expect(child.exitCode).toBe(0);
  });

  it('takes over a lock left by a process that is gone, or left empty', async () => {
    const lock = join(dir, 'x.lock');
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    await writeFile(lock, `${gone}\n`);
    let ran = false;
    await withFileLock(lock, async () => {
      ran = true;
    });
    expect(ran).toBe(true);
    await writeFile(lock, '');
    const t0 = performance.now();
    await withFileLock(lock, async () => {}, { pollMs: 5 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45); // ten looks at an empty file, 5 ms apart
  });

  it('stops waiting on abort, leaving the holder its lock', async () => {
    const lock = join(dir, 'x.lock');
    await writeFile(lock, `${process.pid}\n`); // held by a live process (this one, outside withFileLock)
    const ac = new AbortController();
    const reason = new Error('stop');
    setTimeout(() => ac.abort(reason), 50);
    await expect(withFileLock(lock, async () => {}, { pollMs: 10, signal: ac.signal })).rejects.toBe(reason);
    expect((await readFile(lock, 'utf8')).trim()).toBe(String(process.pid));
  });
});
