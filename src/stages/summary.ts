// The human-readable end of a build: one block per target with package path, size, quantization, metrics, gates.
import type { BuildReport } from './build-report.js';
import { formatBytes, indent } from '../util/format.js';

export function formatBuildSummary(r: BuildReport): string {
  const lines: string[] = [];
  lines.push(`${r.model}: ${r.source.origin}`);
  for (const t of r.targets) {
    if (t.ok) {
      const size = (t.files ?? []).reduce((n, f) => n + f.size, 0);
      lines.push(`  ✔ ${t.target}: ${t.package} (${formatBytes(size)}, ${(t.files ?? []).length} files)`);
    } else {
      lines.push(`  ✖ ${t.target}: failed at ${t.failure?.stage}: ${t.failure?.message.split('\n')[0]}`);
      if (t.failure?.code === 'GATE_FAILED') lines.push(indent(t.failure.message.split('\n').slice(1).join('\n'), 6));
    }
    const q = t.quantization as { scheme?: string; algo?: string; block_size?: number } | undefined;
    lines.push(`      precision ${t.precision}${q && q.scheme !== 'none' ? `, ${q.scheme} ${q.algo} block ${q.block_size}` : ', not quantized'}`);
    if (t.validation) {
      const m = t.validation.metrics;
      const parts = [`ppl ${m.ppl.toFixed(3)}`];
      if (m.ppl_delta_pct !== undefined) parts.push(`Δppl ${m.ppl_delta_pct.toFixed(2)}%`);
      if (m.kl_mean !== undefined) parts.push(`KL ${m.kl_mean.toFixed(4)}`);
      if (m.top1_agreement !== undefined) parts.push(`top-1 ${(100 * m.top1_agreement).toFixed(1)}%`);
      lines.push(`      ${parts.join(', ')}`);
    }
  }
  const work = r.stagesRun === 0 ? 'nothing to do: every stage was cached' : `${r.stagesRun} stages run, ${r.stagesCached} cached`;
  lines.push(`${work}; ${r.seconds.toFixed(1)}s`);
  return lines.join('\n') + '\n';
}
