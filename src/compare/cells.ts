// How each number of a comparison reads, shared by the markdown and HTML reports so both say the same thing.
import { formatBytes } from '../util/format.js';
import type { CompareReport, CompareRow } from './compare-report.js';

export const DASH = '—';

export interface Column {
  key: string;
  title: string;
  /** Right-aligned (numbers). */
  numeric: boolean;
  cell: (r: CompareRow) => string;
}

const num = (v: number | undefined, f: (v: number) => string) => (v === undefined || !Number.isFinite(v) ? DASH : f(v));

/** Three significant digits, grouped thousands for large values (12,300 rather than 1.23e+4). */
export function sig3(v: number): string {
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toPrecision(3);
}

export function signedPct(v: number): string {
  const s = Math.abs(v) < 0.005 ? '0.00' : v.toFixed(2);
  return v > 0 && s !== '0.00' ? `+${s}` : s;
}

/** `gates ok`, `gates failed: kl_mean`, `failed at quantize: …` — what a row's last column says. */
export function statusText(r: CompareRow): string {
  if (!r.ok) return `failed at ${r.failure?.stage ?? 'build'}: ${(r.failure?.message ?? 'unknown error').split('\n')[0]}`;
  const parts: string[] = [];
  const failedGates: string[] = r.gates?.rows.filter((g) => !g.ok).map((g) => g.metric) ?? [];
  if (r.size_budget && !r.size_budget.ok) failedGates.push('size budget');
  if (r.gates || r.size_budget) parts.push(failedGates.length ? `gates failed: ${failedGates.join(', ')}` : 'gates ok');
  else parts.push('ok');
  if (r.speed_error) parts.push(`speed not measured: ${r.speed_error.split('\n')[0]}`);
  return parts.join('; ');
}

export const COLUMNS: readonly Column[] = [
  { key: 'scheme', title: 'scheme', numeric: false, cell: (r) => r.scheme },
  { key: 'size', title: 'size', numeric: true, cell: (r) => num(r.size_bytes, formatBytes) },
  { key: 'bits', title: 'bits/weight', numeric: true, cell: (r) => num(r.bits_per_weight, (v) => v.toFixed(2)) },
  { key: 'ppl', title: 'ppl', numeric: true, cell: (r) => num(r.metrics?.ppl, sig3) },
  { key: 'dppl', title: 'Δppl %', numeric: true, cell: (r) => num(r.metrics?.ppl_delta_pct, signedPct) },
  { key: 'kl_mean', title: 'KL mean', numeric: true, cell: (r) => num(r.metrics?.kl_mean, (v) => v.toPrecision(3)) },
  { key: 'kl_p99', title: 'KL p99', numeric: true, cell: (r) => num(r.metrics?.kl_p99, (v) => v.toPrecision(3)) },
  { key: 'top1', title: 'top-1', numeric: true, cell: (r) => num(r.metrics?.top1_agreement, (v) => `${(100 * v).toFixed(1)}%`) },
  { key: 'prefill', title: 'prefill tok/s', numeric: true, cell: (r) => num(r.speed?.prefill_tokens_per_s, sig3) },
  { key: 'decode', title: 'decode tok/s', numeric: true, cell: (r) => num(r.speed?.decode_tokens_per_s, sig3) },
  { key: 'build', title: 'build s', numeric: true, cell: (r) => num(r.build_seconds, (v) => v.toFixed(1)) },
  { key: 'status', title: 'status', numeric: false, cell: statusText },
];

/** One line on what the rows were measured on and how. */
export function describeMeasurement(r: CompareReport): string[] {
  const lines: string[] = [];
  if (r.data) {
    const ref = r.reference ? `; reference ppl ${sig3(r.reference.ppl)} over ${r.reference.tokens_scored} tokens` : '';
    lines.push(`Quality: ${r.data}, scored against the unquantized model${ref}.`);
  }
  if (r.speed) {
    lines.push(
      `Speed: ${r.speed.runtime}, prefill of ${r.speed.prefill_tokens} tokens then ${r.speed.decode_tokens} decode steps, ` +
        `median of ${r.speed.runs} run${r.speed.runs === 1 ? '' : 's'} after ${r.speed.warmup} warm-up.`,
    );
  }
  if (r.gates || r.size_budget_mb !== undefined) {
    const g = Object.entries(r.gates ?? {}).map(([k, v]) => `${k} ${k === 'top1_agreement' ? '≥' : '≤'} ${v}`);
    if (r.size_budget_mb !== undefined) g.push(`size ≤ ${r.size_budget_mb} MiB`);
    lines.push(`Gates (reported, not enforced): ${g.join(', ')}.`);
  }
  return lines;
}
