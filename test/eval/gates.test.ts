import { describe, expect, it } from 'vitest';
import { checkGates, formatGateTable } from '../../src/eval/gates.js';
import { GatesSchema } from '../../src/recipes/schema.js';

describe('checkGates', () => {
  const metrics = { ppl_delta_pct: 9.8, kl_mean: 0.031, kl_p99: 0.4, top1_agreement: 0.91 };

  it('passes when every set gate holds, and with no gates', () => {
    const v = checkGates(metrics, { ppl_delta_pct: 10, kl_mean: 0.05 });
    expect(v.passed).toBe(true);
    expect(v.rows.map((r) => [r.metric, r.ok])).toEqual([
      ['ppl_delta_pct', true],
      ['kl_mean', true],
    ]);
    expect(checkGates(metrics, undefined)).toEqual({ passed: true, rows: [] });
    expect(checkGates(metrics, {}).passed).toBe(true);
  });

  it('bounds ppl_delta_pct, kl_mean and kl_p99 from above, top1_agreement from below', () => {
    const v = checkGates(metrics, { ppl_delta_pct: 8, kl_mean: 0.05, kl_p99: 0.3, top1_agreement: 0.95 });
    expect(v.passed).toBe(false);
    expect(v.rows).toEqual([
      { metric: 'ppl_delta_pct', kind: 'max', measured: 9.8, allowed: 8, ok: false },
      { metric: 'kl_mean', kind: 'max', measured: 0.031, allowed: 0.05, ok: true },
      { metric: 'kl_p99', kind: 'max', measured: 0.4, allowed: 0.3, ok: false },
      { metric: 'top1_agreement', kind: 'min', measured: 0.91, allowed: 0.95, ok: false },
    ]);
    // Limits are inclusive.
    expect(checkGates({ kl_mean: 0.05, top1_agreement: 0.9 }, { kl_mean: 0.05, top1_agreement: 0.9 }).passed).toBe(true);
  });

  it('fails a gate whose metric was not measured', () => {
    const v = checkGates({ kl_mean: NaN }, { kl_mean: 0.05, top1_agreement: 0.5 });
    expect(v.passed).toBe(false);
    expect(v.rows.map((r) => r.measured)).toEqual([null, null]);
  });

  it('accepts what the recipe schema parses', () => {
    const gates = GatesSchema.parse({ ppl_delta_pct: 8, kl_mean: 0.05 });
    expect(checkGates(metrics, gates).passed).toBe(false);
  });
});

describe('formatGateTable', () => {
  it('prints measured vs allowed with a verdict per metric', () => {
    const { rows } = checkGates({ ppl_delta_pct: 9.8123, kl_mean: 0.031, top1_agreement: 0.91 }, { ppl_delta_pct: 8, kl_mean: 0.05, top1_agreement: 0.95, kl_p99: 1 });
    const table = formatGateTable(rows).split('\n');
    expect(table).toHaveLength(5);
    expect(table[0]).toMatch(/^metric\s+measured\s+allowed\s+ok$/);
    expect(table[1]).toMatch(/^ppl_delta_pct\s+9\.812%\s+≤ 8\.000%\s+FAIL$/);
    expect(table[2]).toMatch(/^kl_mean\s+0\.03100\s+≤ 0\.05000\s+ok$/);
    expect(table[3]).toMatch(/^kl_p99\s+not measured\s+≤ 1\.000\s+FAIL$/);
    expect(table[4]).toMatch(/^top1_agreement\s+91\.00%\s+≥ 95\.00%\s+FAIL$/);
    // Columns line up.
    const col = table[0].indexOf('measured');
    for (const l of table.slice(1)) expect(l[col - 1]).toBe(' ');
    expect(formatGateTable([])).toBe('no gates');
  });
});
