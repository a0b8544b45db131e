// Validation gates: compares measured metrics with a recipe's limits (`"gates": {"ppl_delta_pct": 8, ...}`) and
// formats the verdict as a plain-text table of measured vs allowed.
import type { Gates } from '../recipes/schema.js';

export type GateKey = keyof Gates;

/** Whether a gate bounds its metric from above or below. */
export const GATE_KINDS: Readonly<Record<GateKey, 'max' | 'min'>> = {
  ppl_delta_pct: 'max',
  kl_mean: 'max',
  kl_p99: 'max',
  top1_agreement: 'min',
};

export interface GateRow {
  metric: GateKey;
  kind: 'max' | 'min';
  /** null when the evaluation did not measure it (e.g. no reference to compare with): the gate then fails. */
  measured: number | null;
  allowed: number;
  ok: boolean;
}

export interface GateVerdict {
  passed: boolean;
  rows: GateRow[];
}

/** Checks every gate that is set; no gates at all passes. A metric that is missing or NaN fails its gate. */
export function checkGates(metrics: Partial<Record<GateKey, number>>, gates: Gates | undefined): GateVerdict {
  const rows: GateRow[] = [];
  for (const key of Object.keys(GATE_KINDS) as GateKey[]) {
    const allowed = gates?.[key];
    if (allowed === undefined) continue;
    const kind = GATE_KINDS[key];
    const v = metrics[key];
    const measured = v === undefined || Number.isNaN(v) ? null : v;
    const ok = measured !== null && (kind === 'max' ? measured <= allowed : measured >= allowed);
    rows.push({ metric: key, kind, measured, allowed, ok });
  }
  return { passed: rows.every((r) => r.ok), rows };
}

function formatValue(metric: GateKey, v: number | null): string {
  if (v === null) return 'not measured';
  if (metric === 'top1_agreement') return `${(100 * v).toFixed(2)}%`;
  if (metric === 'ppl_delta_pct') return `${v.toFixed(3)}%`;
  return v.toPrecision(4);
}

/**
 * A plain-text table, e.g.
 *
 *   metric           measured   allowed    ok
 *   ppl_delta_pct    9.812%     ≤ 8.000%   FAIL
 *   kl_mean          0.03121    ≤ 0.05000  ok
 */
export function formatGateTable(rows: readonly GateRow[]): string {
  if (rows.length === 0) return 'no gates';
  const table = [
    ['metric', 'measured', 'allowed', 'ok'],
    ...rows.map((r) => [r.metric, formatValue(r.metric, r.measured), `${r.kind === 'max' ? '≤' : '≥'} ${formatValue(r.metric, r.allowed)}`, r.ok ? 'ok' : 'FAIL']),
  ];
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  return table.map((row) => row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]))).join('   ')).join('\n');
}
