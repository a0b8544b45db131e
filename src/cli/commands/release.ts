// `pnpm pipeline release <recipe>... [--targets cpu,mobile] [--out DIR] [--zip] [--model-package] [--json]`: build
// every recipe × target, then write reproducible archives, SHA256SUMS and release.json; `--merge DIR...` combines
// releases made separately (one CI job per cell) instead.
import { join } from 'node:path';
import { isTargetId, TARGET_IDS, type TargetId } from '../../target/index.js';
import { UsageError } from '../../util/errors.js';
import { withAbortOnSigint } from '../abort.js';
import { defineCommand, printJson } from '../command.js';
import { indent } from '../../util/format.js';

export const releaseCommand = defineCommand({
  command: 'release [recipes..]',
  describe: 'build recipes for their targets and write reproducible archives + SHA256SUMS + release.json',
  builder: (y) =>
    y
      .positional('recipes', { type: 'string', array: true, describe: 'recipe names or files' })
      .option('targets', { type: 'string', describe: `comma-separated targets (default: each recipe's), of ${TARGET_IDS.join(', ')}` })
      .option('out', { type: 'string', describe: 'release folder (default artifacts/release); packages go to <out>/packages' })
      .option('zip', { type: 'boolean', default: false, describe: 'also write a .zip of every package' })
      .option('model-package', { type: 'boolean', default: false, describe: "also group each model's targets into one onnxruntime model package (<model>.ortpackage)" })
      .option('merge', { type: 'string', array: true, describe: 'instead of building: merge the releases in these folders into --out' })
      .option('artifacts', { type: 'string', describe: 'stage cache folder (default artifacts/, or PHI_FORGE_ARTIFACTS)' })
      .option('token', { type: 'string', describe: 'Hugging Face token for gated models (default HF_TOKEN)' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON document with the release report' }),
  run: async (args) => {
    const recipes = (args.recipes as string[] | undefined) ?? [];
    const merge = args.merge as string[] | undefined;
    const { checkWorkFolder } = await import('../../util/output-path.js');
    const out = await checkWorkFolder(args.out ?? join(process.env.PHI_FORGE_ARTIFACTS ?? 'artifacts', 'release'), '--out');
    if (merge?.length) {
      if (recipes.length) throw new UsageError('give recipes to build, or --merge folders, not both');
      const { mergeReleases } = await import('../../../pipelines/release.js');
      const index = await mergeReleases(merge, out);
      if (args.json) printJson({ ok: true, out, index });
      else process.stdout.write(formatIndex(out, index));
      return 0;
    }
    if (recipes.length === 0) throw new UsageError('name at least one recipe (see `pnpm pipeline release --help`)');
    const targets = parseTargets(args.targets);
    const { release } = await import('../../../pipelines/release.js');
    const report = await withAbortOnSigint((signal) =>
      release({
        recipes,
        targets,
        out,
        zip: args.zip,
        modelPackage: args.modelPackage,
        artifacts: args.artifacts,
        hubToken: args.token ?? process.env.HF_TOKEN,
        signal,
        log: (line) => process.stderr.write(`release: ${line}\n`),
      }),
    );
    if (args.json) {
      printJson(report);
    } else if (report.ok && report.index) {
      process.stdout.write(formatIndex(report.out, report.index));
    } else {
      const lines = ['release FAILED: nothing was written', ...report.failures.map((f) => `  ✖ ${f.recipe} for ${f.target}: failed at ${f.stage} (${f.code})\n${indent(f.message, 6)}`)];
      process.stdout.write(lines.join('\n') + '\n');
    }
    return report.ok ? 0 : 1;
  },
});

function parseTargets(s: string | undefined): TargetId[] | undefined {
  if (s === undefined) return undefined;
  const list = s.split(',').map((t) => t.trim()).filter(Boolean);
  const bad = list.filter((t) => !isTargetId(t));
  if (bad.length || list.length === 0) {
    throw new UsageError(`--targets takes a comma-separated list of ${TARGET_IDS.join(', ')}; got '${s}'`);
  }
  return [...new Set(list)] as TargetId[];
}

function formatIndex(out: string, index: { entries: { name: string; targets: { target: string }[]; archives: { file: string; bytes: number; sha256: string }[] }[] }): string {
  const lines = [`release written to ${out}`];
  for (const e of index.entries) {
    for (const a of e.archives) lines.push(`  ${a.file}  ${a.bytes} bytes  sha256 ${a.sha256.slice(0, 16)}…  (${e.targets.map((t) => t.target).join(', ')})`);
  }
  lines.push('  SHA256SUMS, release.json');
  return lines.join('\n') + '\n';
}
