// .github/workflows/release.yml against GitHub's documented workflow syntax ("Workflow syntax for GitHub Actions",
// docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax): only documented keys at each level,
// a matrix of recipes that exist × targets we build, and `pnpm pipeline` command lines our CLI accepts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import yargs from 'yargs';
import { commands } from '../../src/cli/commands/index.js';
import { listRecipes } from '../../src/recipes/load.js';
import { TARGET_IDS } from '../../src/target/index.js';
import { assembleRelease } from '../../pipelines/release.js';
import { cleanTempDirs, tempDir, writeFakePackage } from '../helpers/package.js';

const WORKFLOW = new URL('../../.github/workflows/release.yml', import.meta.url);

/** Top-level keys: `name`, `run-name`, `on`, `permissions`, `env`, `defaults`, `concurrency`, `jobs`. */
const TOP_LEVEL_KEYS = new Set(['name', 'run-name', 'on', 'permissions', 'env', 'defaults', 'concurrency', 'jobs']);
/** `jobs.<job_id>.*` */
const JOB_KEYS = new Set([
  'name', 'permissions', 'needs', 'if', 'runs-on', 'snapshot', 'environment', 'concurrency', 'outputs', 'env', 'defaults',
  'steps', 'timeout-minutes', 'strategy', 'continue-on-error', 'container', 'services', 'uses', 'with', 'secrets',
]);
/** `jobs.<job_id>.steps[*].*` (generally available ones). */
const STEP_KEYS = new Set(['id', 'if', 'name', 'uses', 'run', 'working-directory', 'shell', 'with', 'env', 'continue-on-error', 'timeout-minutes']);
/** `jobs.<job_id>.strategy.*` */
const STRATEGY_KEYS = new Set(['matrix', 'fail-fast', 'max-parallel']);
/** `concurrency.*` / `jobs.<job_id>.concurrency.*` */
const CONCURRENCY_KEYS = new Set(['group', 'cancel-in-progress']);
/** `on.push.*` filters */
const PUSH_FILTERS = new Set(['branches', 'branches-ignore', 'tags', 'tags-ignore', 'paths', 'paths-ignore']);
/** Events this workflow may be triggered by (a subset of "Events that trigger workflows"). */
const EVENTS = new Set(['push', 'pull_request', 'workflow_dispatch', 'schedule', 'release', 'workflow_call']);
/** GITHUB_TOKEN permission scopes and their values. */
const PERMISSION_SCOPES = new Set([
  'actions', 'attestations', 'checks', 'contents', 'deployments', 'discussions', 'id-token', 'issues', 'models', 'packages',
  'pages', 'pull-requests', 'security-events', 'statuses',
]);
const PERMISSION_VALUES = new Set(['read', 'write', 'none']);

type Step = Record<string, unknown> & { uses?: string; run?: string; with?: Record<string, unknown> };
type Job = Record<string, unknown> & { steps: Step[]; strategy?: { matrix: Record<string, unknown[]> }; needs?: string | string[] };
type Workflow = { on: Record<string, unknown>; jobs: Record<string, Job>; permissions?: Record<string, string>; concurrency?: Record<string, unknown> };

async function load(): Promise<Workflow> {
  return parse(await readFile(WORKFLOW, 'utf8')) as Workflow;
}

function unknownKeys(obj: object, allowed: ReadonlySet<string>): string[] {
  return Object.keys(obj).filter((k) => !allowed.has(k));
}

function checkPermissions(p: Record<string, string> | undefined): void {
  if (p === undefined) return;
  expect(unknownKeys(p, PERMISSION_SCOPES)).toEqual([]);
  for (const v of Object.values(p)) expect(PERMISSION_VALUES.has(v)).toBe(true);
}

/** Parses a `pnpm pipeline ...` command line strictly with our own command definitions (handlers not run). */
function parsePipelineCommand(line: string): Record<string, unknown> {
  const argv = line.trim().split(/\s+/).slice(2).map((a) => a.replace(/^"(.*)"$/, '$1'));
  const spec = commands.find((c) => c.command.split(' ')[0] === argv[0]);
  if (!spec) throw new Error(`no command '${argv[0]}' in: ${line}`);
  let parsed: Record<string, unknown> | undefined;
  spec
    .register(yargs(argv).option('verbose', { type: 'boolean', default: false }), (a) => void (parsed = a))
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(`${msg} (in: ${line})`);
    })
    .parseSync();
  if (!parsed) throw new Error(`not parsed: ${line}`);
  return parsed;
}

/** The `pnpm pipeline` lines of a run script, with the matrix values and shell variables filled in. */
function pipelineLines(run: string, vars: Record<string, string>): string[] {
  return run
    .split('\n')
    .filter((l) => l.includes('pnpm pipeline'))
    .map((l) => l.slice(l.indexOf('pnpm pipeline')).replace(/\$\{\{\s*matrix\.(\w+)\s*\}\}/g, (_, k: string) => vars[k] ?? `<${k}>`))
    .map((l) => l.replace(/"\$dir"/, 'release/packages/x/').replace('cells/*', 'cells/a cells/b'));
}

describe('.github/workflows/release.yml', () => {
  it('uses only documented keys at the top level, in jobs, strategies and steps', async () => {
    const wf = await load();
    expect(unknownKeys(wf, TOP_LEVEL_KEYS)).toEqual([]);
    expect(unknownKeys(wf.on, EVENTS)).toEqual([]);
    const push = wf.on.push as Record<string, unknown> | undefined;
    if (push) expect(unknownKeys(push, PUSH_FILTERS)).toEqual([]);
    checkPermissions(wf.permissions);
    if (wf.concurrency) expect(unknownKeys(wf.concurrency, CONCURRENCY_KEYS)).toEqual([]);
    for (const [id, job] of Object.entries(wf.jobs)) {
      expect([id, unknownKeys(job, JOB_KEYS)]).toEqual([id, []]);
      expect(job['runs-on']).toBeTruthy();
      checkPermissions(job.permissions as Record<string, string> | undefined);
      if (job.strategy) expect(unknownKeys(job.strategy, STRATEGY_KEYS)).toEqual([]);
      for (const need of [job.needs ?? []].flat()) expect(Object.keys(wf.jobs)).toContain(need);
      expect(Array.isArray(job.steps) && job.steps.length > 0).toBe(true);
      for (const step of job.steps) {
        expect(unknownKeys(step, STEP_KEYS)).toEqual([]);
        // A step either runs an action or a shell script, never both or neither.
        expect([step.uses === undefined, step.run === undefined].filter(Boolean)).toHaveLength(1);
        if (step.uses) expect(step.uses).toMatch(/^[\w.-]+\/[\w.-]+@v\d+$/);
        if (step.with) expect(step.uses).toBeDefined();
      }
    }
  });

  it('runs a matrix of shipped recipes × targets we build', async () => {
    const job = (await load()).jobs.package;
    const { recipe, target } = job.strategy!.matrix as { recipe: string[]; target: string[] };
    const shipped = await listRecipes();
    expect(recipe.length).toBeGreaterThan(0);
    for (const r of recipe) expect(shipped).toContain(r);
    expect(target).toEqual([...TARGET_IDS]);
    expect(job.name).toContain('${{ matrix.recipe }}');
  });

  it('installs Node 20 and pnpm 10 before installing the locked dependencies', async () => {
    for (const job of Object.values((await load()).jobs)) {
      const i = (pred: (s: Step) => boolean) => job.steps.findIndex(pred);
      const node = i((s) => s.uses?.startsWith('actions/setup-node@') ?? false);
      const pnpm = i((s) => s.run?.includes('npm i -g pnpm@10') ?? false);
      const install = i((s) => s.run?.includes('pnpm install --frozen-lockfile') ?? false);
      expect(job.steps[node].with).toMatchObject({ 'node-version': 20 });
      expect(node).toBeGreaterThanOrEqual(0);
      expect(pnpm).toBeGreaterThan(node);
      expect(install).toBeGreaterThan(pnpm);
    }
  });

  it('caches artifacts/ keyed on the recipe file and the lockfile, then releases and uploads per cell', async () => {
    const job = (await load()).jobs.package;
    const cache = job.steps.find((s) => s.uses?.startsWith('actions/cache@'))!;
    expect(cache.with!.path).toBe('artifacts');
    const key = String(cache.with!.key);
    expect(key).toContain("hashFiles(format('recipes/{0}.json', matrix.recipe), 'pnpm-lock.yaml')");
    expect(key).toContain('${{ matrix.target }}');
    const runs = job.steps.filter((s) => s.run).map((s) => s.run!);
    const release = runs.flatMap((r) => pipelineLines(r, { recipe: 'tiny-phi', target: 'cpu' })).find((l) => l.startsWith('pnpm pipeline release'));
    expect(release).toBe('pnpm pipeline release tiny-phi --targets cpu --out release --zip');
    const cacheAt = job.steps.indexOf(cache);
    expect(job.steps.findIndex((s) => s.run?.includes('pnpm pipeline release'))).toBeGreaterThan(cacheAt);
    const upload = job.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(upload.with).toMatchObject({ name: 'release-${{ matrix.recipe }}-${{ matrix.target }}', 'if-no-files-found': 'error' });
    expect(String(upload.with!.path)).toMatch(/release\/\*\.tar\.gz[\s\S]*release\/SHA256SUMS/);
  });

  it('every `pnpm pipeline` command line parses with our CLI, for every matrix cell', async () => {
    const wf = await load();
    const { recipe, target } = wf.jobs.package.strategy!.matrix as { recipe: string[]; target: string[] };
    let checked = 0;
    for (const job of Object.values(wf.jobs)) {
      for (const step of job.steps.filter((s) => s.run)) {
        for (const r of recipe) {
          for (const t of target) {
            for (const line of pipelineLines(step.run!, { recipe: r, target: t })) {
              const args = parsePipelineCommand(line);
              if (line.includes(' release ') && !line.includes('--merge')) expect([args.recipes, args.targets]).toEqual([[r], t]);
              checked++;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3 * recipe.length * target.length);
    expect(() => parsePipelineCommand('pnpm pipeline release tiny-phi --target cpu')).toThrow(/Unknown argument/);
  });

  it('publishes one merged, checksum-verified GitHub release on tags only', async () => {
    const job = (await load()).jobs.publish;
    expect(job.needs).toBe('package');
    expect(job.if).toBe("startsWith(github.ref, 'refs/tags/')");
    expect(job.permissions).toEqual({ contents: 'write', 'id-token': 'write', attestations: 'write' });
    const runs = job.steps.filter((s) => s.run).map((s) => s.run!);
    const download = job.steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
    expect(download.with).toMatchObject({ pattern: 'release-*', path: 'cells' });
    const order = ['pnpm pipeline release --merge', 'sha256sum -c SHA256SUMS', 'gh release create'].map((c) => runs.findIndex((r) => r.includes(c)));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(job.steps.find((s) => s.run?.includes('gh release create'))!.env).toEqual({ GH_TOKEN: '${{ github.token }}' });
  });

  // A package edited together with its manifest passes `verify` (nothing signs the manifest); what proves an
  // archive came from this repository's workflow is a build-provenance attestation of its sha256.
  describe('build-provenance attestations', () => {
    afterAll(cleanTempDirs);

    /** The attest-build-provenance step of a job and its subject-path globs (newline or comma separated). */
    function attestation(job: Job): { at: number; globs: string[] } {
      const at = job.steps.findIndex((s) => /^actions\/attest-build-provenance@v\d+$/.test(s.uses ?? ''));
      expect(at).toBeGreaterThanOrEqual(0);
      const globs = String(job.steps[at].with?.['subject-path'] ?? '')
        .split(/[\n,]/)
        .map((g) => g.trim())
        .filter(Boolean);
      return { at, globs };
    }
    /** `*` within one path segment, as @actions/glob matches it; nothing else is special in our globs. */
    const matches = (glob: string, file: string) =>
      new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`).test(file);

    it('every cell attests each archive `release --zip` writes, after building it and before uploading it', async () => {
      const job = (await load()).jobs.package;
      // id-token mints the OIDC token Sigstore signs with; attestations stores it; contents for the checkout.
      expect(job.permissions).toEqual({ contents: 'read', 'id-token': 'write', attestations: 'write' });
      const { at, globs } = attestation(job);
      const built = job.steps.findIndex((s) => s.run?.includes('pnpm pipeline release'));
      const uploaded = job.steps.findIndex((s) => s.uses?.startsWith('actions/upload-artifact@'));
      expect(built).toBeGreaterThanOrEqual(0);
      expect([built < at, at < uploaded]).toEqual([true, true]);
      // Against a real release folder: every archive release.json lists is a subject, and nothing else is.
      const work = await tempDir('phi-forge-attest-');
      const cpu = await writeFakePackage(join(work, 'tiny-test-cpu'), { target: 'cpu' });
      const index = await assembleRelease([{ target: 'cpu', dir: cpu }], { out: join(work, 'release'), zip: true });
      const archives = index.entries.flatMap((e) => e.archives.map((a) => `release/${a.file}`));
      expect(archives).toHaveLength(2);
      for (const a of archives) expect([a, globs.some((g) => matches(g, a))]).toEqual([a, true]);
      for (const other of ['release/release.json', 'release/SHA256SUMS', 'release/packages/tiny-test-cpu/model.onnx']) {
        expect([other, globs.some((g) => matches(g, other))]).toEqual([other, false]);
      }
    });

    it('the publish job attests the merged release.json and SHA256SUMS before creating the release', async () => {
      const job = (await load()).jobs.publish;
      expect(job.permissions).toMatchObject({ 'id-token': 'write', attestations: 'write' });
      const { at, globs } = attestation(job);
      expect(globs.sort()).toEqual(['release/SHA256SUMS', 'release/release.json']);
      const merged = job.steps.findIndex((s) => s.run?.includes('pnpm pipeline release --merge'));
      const created = job.steps.findIndex((s) => s.run?.includes('gh release create'));
      expect([merged < at, at < created]).toEqual([true, true]);
    });
  });
});
