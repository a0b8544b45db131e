// runTool: line streaming (\r redraws included), percentages, the log file, failure with the log's tail, a missing
// executable, and Ctrl-C killing the whole process tree (grandchildren included).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePercent, quoteArg, runTool } from '../../src/external/run-tool.js';
import { ExternalToolError } from '../../src/util/errors.js';
import { waitGone } from '../helpers/fake-python.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-run-tool-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sh = (script: string) => ({ file: '/bin/sh', args: ['-c', script] });

describe('parsePercent', () => {
  it('finds the last percentage in a line', () => {
    expect(parsePercent('Loading checkpoint shards:  50%|#####     | 1/2')).toBe(50);
    expect(parsePercent('quantizing 12.5% done')).toBe(12.5);
    expect(parsePercent('step 3: 10% -> 40%')).toBe(40);
    expect(parsePercent('no progress here')).toBeUndefined();
    expect(parsePercent('1.2%')).toBe(1.2);
    expect(parsePercent('version 1.2.3%')).toBeUndefined(); // the tail of a dotted version, not a percentage
    expect(parsePercent('over 150% of budget')).toBeUndefined();
  });
});

describe('runTool', () => {
  it('streams stdout and stderr lines, splits \\r redraws, reports percentages and tees everything to the log', async () => {
    const logFile = join(dir, 'stream.log');
    const lines: [string, string][] = [];
    const pcts: number[] = [];
    const r = await runTool({
      ...sh(`printf 'first line\\n'; printf '\\r 10%%|#   |\\r 60%%|###|\\r100%%|####|\\n' >&2; printf 'no newline at end'`),
      label: 'sh',
      logFile,
      env: { PATH: '/usr/bin:/bin' },
      onLine: (l, s) => lines.push([s, l]),
      onProgress: (p) => pcts.push(p),
    });
    expect(lines).toContainEqual(['stdout', 'first line']);
    expect(lines).toContainEqual(['stdout', 'no newline at end']);
    expect(lines.filter(([s]) => s === 'stderr').map(([, l]) => l)).toEqual([' 10%|#   |', ' 60%|###|', '100%|####|']);
    expect(pcts).toEqual([10, 60, 100]);
    expect(r.tail).toContain('first line');
    const log = await readFile(logFile, 'utf8');
    expect(log.split('\n')[0]).toBe(`$ /bin/sh -c ${quoteArg(r.command[2])}`);
    expect(log).toContain('first line\n');
    expect(log).toContain('\r 60%|###|');
    expect(log).toMatch(/# ended .*: exit code 0/);
  });

  it('gives the child exactly the environment passed', async () => {
    const lines: string[] = [];
    await runTool({ ...sh('echo "A=$PHI_A B=${PHI_B-unset}"'), label: 'sh', logFile: join(dir, 'env.log'), env: { PATH: '/bin', PHI_A: 'x' }, onLine: (l) => lines.push(l) });
    expect(lines).toEqual(['A=x B=unset']);
  });

  it('fails a non-zero exit with the last lines of output and the log file named', async () => {
    const logFile = join(dir, 'fail.log');
    const script = 'for i in $(seq 1 30); do echo "line $i"; done; echo "RuntimeError: boom" >&2; exit 7';
    const err = await runTool({ ...sh(script), label: 'the test tool', logFile, env: { PATH: '/usr/bin:/bin' }, tailLines: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExternalToolError);
    const e = err as ExternalToolError;
    expect(e.code).toBe('EXTERNAL_TOOL_FAILED');
    expect(e.message).toContain('the test tool exited with code 7');
    expect(e.message).toContain('| RuntimeError: boom');
    expect(e.message).toContain('| line 30');
    expect(e.message).not.toContain('| line 26'); // only the last 5 lines
    expect(e.file).toBe(logFile);
    expect(await readFile(logFile, 'utf8')).toContain('line 1\n');
  });

  it('appends when several commands share one log', async () => {
    const logFile = join(dir, 'shared.log');
    await runTool({ ...sh('echo one'), label: 'sh', logFile, env: { PATH: '/bin' } });
    await runTool({ ...sh('echo two'), label: 'sh', logFile, env: { PATH: '/bin' } });
    const log = await readFile(logFile, 'utf8');
    expect(log.indexOf('one\n')).toBeGreaterThan(0);
    expect(log.indexOf('two\n')).toBeGreaterThan(log.indexOf('one\n'));
  });

  it('reports an executable that cannot be started', async () => {
    const err = await runTool({ file: join(dir, 'no-such-tool'), args: [], label: 'nothing', logFile: join(dir, 'enoent.log'), env: { PATH: '/bin' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExternalToolError);
    expect((err as ExternalToolError).code).toBe('EXTERNAL_TOOL_NOT_STARTED');
  });

  it('does not wait for a background process the tool left holding its output pipe, and kills it', async () => {
    const pidFile = join(dir, 'leftover.pid');
    await runTool({ ...sh(`sleep 300 & echo $! > '${pidFile}'; echo started`), label: 'sh', logFile: join(dir, 'leftover.log'), env: { PATH: '/usr/bin:/bin' } });
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    expect(await waitGone([pid])).toEqual([]);
  });

  it('on abort kills the child and its grandchildren and rejects with the abort reason', async () => {
    const pidFile = join(dir, 'tree.pid');
    // The child starts a grandchild (same process group, as Python workers are) and both ignore nothing.
    const script = `sleep 300 & echo "$$ $!" > '${pidFile}'; echo ready; wait`;
    const controller = new AbortController();
    const reason = new Error('interrupted by the test');
    const run = runTool({
      ...sh(script),
      label: 'sh',
      logFile: join(dir, 'abort.log'),
      env: { PATH: '/usr/bin:/bin' },
      signal: controller.signal,
      onLine: (l) => {
        if (l === 'ready') controller.abort(reason);
      },
    });
    await expect(run).rejects.toBe(reason);
    const pids = (await readFile(pidFile, 'utf8')).trim().split(' ').map(Number);
    expect(pids).toHaveLength(2);
    expect(await waitGone(pids)).toEqual([]);
    expect(await readFile(join(dir, 'abort.log'), 'utf8')).toContain('# aborted: sending SIGTERM to process group');
  });

  it('escalates to SIGKILL when the tree ignores SIGTERM', async () => {
    const pidFile = join(dir, 'stubborn.pid');
    const script = `trap '' TERM; (trap '' TERM; sleep 300) & echo "$$ $!" > '${pidFile}'; echo ready; while :; do sleep 1; done`;
    const controller = new AbortController();
    const run = runTool({
      ...sh(script),
      label: 'sh',
      logFile: join(dir, 'stubborn.log'),
      env: { PATH: '/usr/bin:/bin' },
      signal: controller.signal,
      killGraceMs: 200,
      onLine: (l) => {
        if (l === 'ready') controller.abort(new Error('stop'));
      },
    });
    await expect(run).rejects.toThrow('stop');
    const pids = (await readFile(pidFile, 'utf8')).trim().split(' ').map(Number);
    expect(await waitGone(pids)).toEqual([]);
  });

  it('refuses to start when already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('already'));
    const marker = join(dir, 'never-ran');
    await expect(runTool({ ...sh(`touch '${marker}'`), label: 'sh', logFile: join(dir, 'pre.log'), signal: controller.signal })).rejects.toThrow('already');
    expect(await readFile(marker).then(() => true, () => false)).toBe(false);
  });
});
