// A labelled scatter plot as inline SVG text (axes, ticks, points, an optional Pareto front line), with no script
// and no external resource, styled by the page's CSS classes.
export interface PlotPoint {
  label: string;
  x: number;
  y: number;
  /** Hover text (an SVG <title>, shown without any script). */
  tip?: string;
}

export interface PlotOptions {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly PlotPoint[];
  /** Indices of the points on the Pareto front, ordered by x: joined by a line and marked. */
  front?: readonly number[];
  /** `symlog` (sign · log10(1 + |v|)) keeps a far outlier from flattening every other point. Default linear. */
  yScale?: 'linear' | 'symlog';
  /** Stretch the axis to include 0 (sizes, speeds). */
  xFromZero?: boolean;
  yFromZero?: boolean;
  width?: number;
  height?: number;
}

const MARGIN = { left: 64, right: 24, top: 36, bottom: 52 };

export function scatterSvg(o: PlotOptions): string {
  const W = o.width ?? 520;
  const H = o.height ?? 380;
  const x0 = MARGIN.left;
  const x1 = W - MARGIN.right;
  const y0 = H - MARGIN.bottom;
  const y1 = MARGIN.top;
  const pts = o.points.map((p, i) => ({ ...p, i })).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const ty = o.yScale === 'symlog' ? symlog : (v: number) => v;
  const xd = domain(pts.map((p) => p.x), o.xFromZero);
  const yd = domain(pts.map((p) => ty(p.y)), o.yFromZero);
  const sx = (v: number) => x0 + ((v - xd[0]) / (xd[1] - xd[0])) * (x1 - x0);
  const sy = (v: number) => y0 - ((ty(v) - yd[0]) / (yd[1] - yd[0])) * (y0 - y1);

  const out: string[] = [];
  out.push(
    `<svg id="${attr(o.id)}" class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="${attr(o.id)}-title">`,
    `<title id="${attr(o.id)}-title">${text(o.title)}</title>`,
    `<rect class="frame" x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}"/>`,
  );
  // Ticks and grid lines.
  out.push('<g class="axis x-axis">');
  for (const t of niceTicks(xd[0], xd[1])) {
    const x = fx(sx(t));
    out.push(`<line class="grid" x1="${x}" y1="${y1}" x2="${x}" y2="${y0}"/>`, `<text class="tick" x="${x}" y="${y0 + 16}" text-anchor="middle">${text(tickLabel(t))}</text>`);
  }
  out.push(`<text class="axis-label" x="${fx((x0 + x1) / 2)}" y="${H - 12}" text-anchor="middle">${text(o.xLabel)}</text>`, '</g>');
  out.push('<g class="axis y-axis">');
  const yTicks = o.yScale === 'symlog' ? symlogTicks(yd[0], yd[1]) : niceTicks(yd[0], yd[1]);
  for (const t of yTicks) {
    const y = y0 - ((ty(t) - yd[0]) / (yd[1] - yd[0])) * (y0 - y1);
    out.push(`<line class="grid" x1="${x0}" y1="${fx(y)}" x2="${x1}" y2="${fx(y)}"/>`, `<text class="tick" x="${x0 - 6}" y="${fx(y + 4)}" text-anchor="end">${text(tickLabel(t))}</text>`);
  }
  out.push(
    `<text class="axis-label" transform="translate(16 ${fx((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle">${text(o.yLabel)}${o.yScale === 'symlog' ? ' (log scale)' : ''}</text>`,
    '</g>',
  );

  if (pts.length === 0) {
    out.push(`<text class="empty" x="${fx((x0 + x1) / 2)}" y="${fx((y0 + y1) / 2)}" text-anchor="middle">no scheme has both values</text>`, '</svg>');
    return out.join('\n');
  }

  const front = new Set(o.front ?? []);
  const frontPts = (o.front ?? []).map((i) => o.points[i]).filter((p) => p && Number.isFinite(p.x) && Number.isFinite(p.y));
  if (frontPts.length > 1) {
    out.push(`<polyline class="pareto-front" points="${frontPts.map((p) => `${fx(sx(p.x))},${fx(sy(p.y))}`).join(' ')}"/>`);
  }
  const placed: { x: number; y: number }[] = [];
  for (const p of pts) {
    const cx = sx(p.x);
    const cy = sy(p.y);
    // Labels of points that sit close together are stacked instead of printed over each other.
    let ly = cy - 8;
    while (placed.some((q) => Math.abs(q.x - cx) < 60 && Math.abs(q.y - ly) < 13)) ly += 13;
    placed.push({ x: cx, y: ly });
    const onFront = front.has(p.i);
    const anchorEnd = cx > x1 - 80;
    out.push(
      `<g class="point${onFront ? ' pareto' : ''}" data-scheme="${attr(p.label)}">`,
      `<title>${text(p.tip ?? p.label)}</title>`,
      onFront ? `<circle class="pareto-mark" cx="${fx(cx)}" cy="${fx(cy)}" r="8"/>` : '',
      `<circle class="dot" cx="${fx(cx)}" cy="${fx(cy)}" r="4.5"/>`,
      `<text class="label" x="${fx(anchorEnd ? cx - 8 : cx + 8)}" y="${fx(ly)}" text-anchor="${anchorEnd ? 'end' : 'start'}">${text(p.label)}</text>`,
      '</g>',
    );
  }
  out.push('</svg>');
  return out.filter(Boolean).join('\n');
}

/** The plotted range: the data's, padded by 6% each side, optionally stretched to 0; never empty. */
function domain(values: number[], fromZero?: boolean): [number, number] {
  if (values.length === 0) return [0, 1];
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (fromZero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (hi === lo) {
    const d = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    return [lo - d, hi + d];
  }
  const pad = (hi - lo) * 0.06;
  return [fromZero && lo === 0 ? 0 : lo - pad, fromZero && hi === 0 ? 0 : hi + pad];
}

/** About `count` round tick values (1, 2 or 5 × 10^k steps) inside [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return [lo];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function symlog(v: number): number {
  return Math.sign(v) * Math.log10(1 + Math.abs(v));
}

/** 0 and ±1, ±3, ±10, ±30, ... inside a symlog-transformed range. */
function symlogTicks(lo: number, hi: number): number[] {
  const mags = Array.from({ length: 9 }, (_, k) => [10 ** k, 3 * 10 ** k]).flat();
  const pos = mags.filter((m) => symlog(m) <= hi);
  const neg = mags.filter((m) => symlog(-m) >= lo).map((m) => -m);
  return [...neg.reverse(), ...(lo <= 0 && hi >= 0 ? [0] : []), ...pos];
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(0);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(+v.toPrecision(6));
}

/** Coordinates with two decimals: enough on screen, and the text stays short and stable. */
function fx(v: number): string {
  return String(Math.round(v * 100) / 100);
}

export function text(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function attr(s: string): string {
  return text(s).replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
