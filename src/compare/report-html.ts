// report.html: one self-contained page (inline CSS and SVG; no script, font or request to any network, enforced by
// its Content-Security-Policy) with the comparison table and two plots: Δppl against bits per weight with the
// Pareto front marked, and decode speed against size.
import { COLUMNS, describeMeasurement } from './cells.js';
import type { CompareReport, CompareRow } from './compare-report.js';
import { paretoFront } from './pareto.js';
import { attr, scatterSvg, text, type PlotPoint } from './svg-plot.js';

const CSS = `
:root { color-scheme: light; --ink: #1f2328; --muted: #656d76; --line: #d0d7de; --accent: #0969da; --front: #cf222e; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
p.meta { margin: 2px 0; color: var(--muted); }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 12px; max-width: 520px; }
svg.plot { max-width: 100%; height: auto; font: 12px system-ui, sans-serif; }
svg .frame { fill: #fafbfc; stroke: var(--line); }
svg .grid { stroke: #eaeef2; }
svg .tick, svg .empty { fill: var(--muted); }
svg .axis-label { fill: var(--ink); font-weight: 600; }
svg .dot { fill: var(--accent); }
svg .pareto .dot { fill: var(--front); }
svg .pareto-mark { fill: none; stroke: var(--front); stroke-width: 1.5; }
svg .pareto-front { fill: none; stroke: var(--front); stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .label { fill: var(--ink); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.scheme { white-space: nowrap; font-weight: 600; }
tr.failed td { color: var(--muted); }
tr.failed td.status { color: var(--front); }
tr.gates-failed td.status { color: #9a6700; }
tr.pareto td.scheme::after { content: " ★"; color: var(--front); }
footer { margin-top: 24px; color: var(--muted); font-size: 12px; }
`;

export function renderCompareHtml(r: CompareReport): string {
  const title = `${r.model} on ${r.target}: scheme comparison`;
  const ok = r.rows.filter((x) => x.ok);
  const tip = (x: CompareRow) =>
    `${x.scheme}: ${fmt(x.bits_per_weight, 2)} bits/weight, Δppl ${fmt(x.metrics?.ppl_delta_pct, 2)}%, ` +
    `${fmt(x.size_bytes !== undefined ? x.size_bytes / 1e6 : undefined, 3)} MB, decode ${fmt(x.speed?.decode_tokens_per_s, 0)} tok/s`;

  const quality: PlotPoint[] = ok.map((x) => ({ label: x.scheme, x: x.bits_per_weight ?? NaN, y: x.metrics?.ppl_delta_pct ?? NaN, tip: tip(x) }));
  const qualityFront = ok.map((x, i) => (x.pareto ? i : -1)).filter((i) => i >= 0).sort((a, b) => quality[a].x - quality[b].x);
  const speed: PlotPoint[] = ok.map((x) => ({
    label: x.scheme,
    x: x.size_bytes !== undefined ? x.size_bytes / 1e6 : NaN,
    y: x.speed?.decode_tokens_per_s ?? NaN,
    tip: tip(x),
  }));
  const speedFront = paretoFront(speed, { x: 'min', y: 'max' });

  const page: string[] = [];
  page.push(
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // Nothing may load from anywhere: the page must read the same offline, attached to a PR or opened from disk.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${text(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${text(title)}</h1>`,
    `<p class="meta">Source: ${text(r.source)} (recipe ${text(r.recipe)}).</p>`,
    ...describeMeasurement(r).map((l) => `<p class="meta">${text(l)}</p>`),
    '<h2>Plots</h2>',
    '<div class="plots">',
    '<figure>',
    scatterSvg({
      id: 'plot-quality',
      title: 'Δppl % against bits per weight',
      xLabel: 'bits per weight',
      yLabel: 'Δppl %',
      points: quality,
      front: qualityFront,
      yScale: symlogWanted(quality.map((p) => p.y)) ? 'symlog' : 'linear',
      xFromZero: true,
    }),
    '<figcaption>Lower is better on both axes. Red: the Pareto front (no other scheme is smaller and more accurate).</figcaption>',
    '</figure>',
    '<figure>',
    scatterSvg({
      id: 'plot-speed',
      title: 'Decode speed against package size',
      xLabel: 'package size (MB)',
      yLabel: 'decode tokens/s',
      points: speed,
      front: speedFront,
      xFromZero: true,
      yFromZero: true,
    }),
    '<figcaption>Up and to the left is better. Red: no other scheme is smaller and faster.</figcaption>',
    '</figure>',
    '</div>',
    '<h2>Results</h2>',
    table(r),
    '<footer>Written by phi-forge <code>pipeline compare</code>. ★ marks the Pareto front of Δppl against bits per weight.</footer>',
    '</main>',
    '</body>',
    '</html>',
  );
  return page.join('\n') + '\n';
}

function table(r: CompareReport): string {
  const head = COLUMNS.map((c) => `<th class="${c.numeric ? 'num' : c.key}">${text(c.title)}</th>`).join('');
  const rows = r.rows.map((row) => {
    const classes = [row.ok ? 'ok' : 'failed'];
    if (row.pareto) classes.push('pareto');
    if (row.ok && (row.gates?.passed === false || row.size_budget?.ok === false)) classes.push('gates-failed');
    const cells = COLUMNS.map((c) => `<td class="${c.numeric ? 'num' : c.key}">${text(c.cell(row))}</td>`).join('');
    return `<tr class="${classes.join(' ')}" data-scheme="${attr(row.scheme)}">${cells}</tr>`;
  });
  return ['<table id="results">', `<thead><tr>${head}</tr></thead>`, '<tbody>', ...rows, '</tbody>', '</table>'].join('\n');
}

/** A log-like y axis when one scheme's Δppl dwarfs the others' (ternary next to int8), so both stay readable. */
function symlogWanted(ys: number[]): boolean {
  const a = ys.filter(Number.isFinite).map(Math.abs).sort((x, y) => x - y);
  if (a.length < 3) return false;
  const max = a[a.length - 1];
  const mid = a[a.length >> 1];
  return max > 50 && max > 20 * Math.max(mid, 0.1);
}

function fmt(v: number | undefined, digits: number): string {
  return v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}
