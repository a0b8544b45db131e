// `pnpm bench`: runs every benchmark, each in its own process (so one's memory does not skew another's), writing
// <name>-bench.json + <name>-bench.md into artifacts/bench/ (or --out DIR), then one summary.md of all of them.
//
//   pnpm bench [--out DIR] [--only codec,quant,eval,quant-full]
//
// quant-full (a full-size Phi-4-mini made, converted and quantized; minutes and ≈23 GB of disk) runs only when named
// in --only.
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';

const BENCHES = [
  { name: 'quant', what: 'int4 RTN throughput (weights/s) vs a plain memory copy of the same bytes', args: ['--json'] },
  { name: 'eval', what: 'eval scoring throughput vs raw onnxruntime forward on the same windows', args: ['--json'] },
  { name: 'codec', what: 'decode + encode of a model with ~1 GB of external data', args: [] },
  {
    name: 'quant-full',
    what: 'quantizing a full-size synthetic Phi-4-mini to int4 RTN: wall time and peak RSS',
    args: ['--json'],
    onlyWhenNamed: true,
  },
] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, only: { type: 'string' } } });
  const out = resolve(values.out ?? new URL('../../artifacts/bench', import.meta.url).pathname);
  const only = values.only?.split(',');
  await mkdir(out, { recursive: true });
  const sections: string[] = ['# phi-forge benchmarks', '', `Machine: ${process.platform} ${process.arch}, Node ${process.version}.`, ''];
  let failed = 0;
  for (const b of BENCHES.filter((x) => (only ? only.includes(x.name) : !('onlyWhenNamed' in x)))) {
    process.stderr.write(`bench ${b.name}: ${b.what}\n`);
    const script = new URL(`./${b.name}.ts`, import.meta.url).pathname;
    const r = await execa('tsx', [script, ...b.args, '--out', out], { preferLocal: true, reject: false, stdout: 'ignore', stderr: 'inherit' });
    sections.push(`## ${b.name}`, '', b.what, '');
    if (r.exitCode !== 0) {
      failed++;
      sections.push(`failed (exit ${r.exitCode})`, '');
      continue;
    }
    sections.push((await readFile(join(out, `${b.name}-bench.md`), 'utf8')).trim(), '');
  }
  await writeFile(join(out, 'summary.md'), sections.join('\n') + '\n');
  process.stdout.write(sections.join('\n') + '\n');
  process.stderr.write(`wrote ${out}/summary.md\n`);
  if (failed) process.exitCode = 1;
}

await main();
