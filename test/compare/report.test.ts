// report.md and report.html from a hand-made comparison: every scheme's row, escaping, Pareto marks, and the HTML
// rendered in headless Chromium (plots, rows, no console error, no request) — plus a doctored page proving the
// checks catch errors and that the page's Content-Security-Policy blocks scripts and network loads.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderCompareHtml } from '../../src/compare/report-html.js';
import { markdownTable, renderCompareMarkdown } from '../../src/compare/report-md.js';
import { chromiumPath } from './chromium.js';
import { expectCleanPage, renderReport } from './chromium-checks.js';
import { fixtureReport, fixtureRows } from './report-fixture.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-compare-report-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** Splits a markdown table row on unescaped pipes. */
function mdCells(line: string): string[] {
  return line
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

describe('report.md', () => {
  const md = renderCompareMarkdown(fixtureReport());
  const table = markdownTable(fixtureReport()).split('\n');

  it('one row per scheme, every row with the header\'s 12 cells', () => {
    expect(table).toHaveLength(2 + 6);
    const head = mdCells(table[0]);
    expect(head).toEqual(['scheme', 'size', 'bits/weight', 'ppl', 'Δppl %', 'KL mean', 'KL p99', 'top-1', 'prefill tok/s', 'decode tok/s', 'build s', 'status']);
    for (const line of table.slice(1)) expect(mdCells(line)).toHaveLength(12);
    expect(table.slice(2).map((l) => mdCells(l)[0])).toEqual(['fp32 ★', 'int8 ★', 'int4-rtn ★', 'int4-hqq', 'ternary ★', 'int4-awq']);
  });

  it('formats the numbers and says why a row failed, on one line with its pipe escaped', () => {
    const row = (s: string) => mdCells(table.find((l) => mdCells(l)[0].replace(' ★', '') === s)!);
    expect(row('int4-rtn')).toEqual(['int4-rtn ★', '873 KB', '5.00', '11.1', '+10.50', '0.0700', '0.210', '60.0%', '18,000', '1,700', '2.8', 'gates ok']);
    expect(row('fp32').slice(4, 8)).toEqual(['0.00', '—', '—', '100.0%'].map((v, i) => (i === 1 || i === 2 ? '0.00' : v)));
    expect(row('ternary')[11]).toBe('gates failed: ppl_delta_pct');
    expect(row('int4-hqq').slice(8, 10)).toEqual(['—', '—']);
    expect(row('int4-hqq')[11]).toBe('gates ok; speed not measured: kernel missing');
    const failed = row('int4-awq');
    expect(failed.slice(1, 11).every((c) => c === '—')).toBe(true);
    expect(failed[11]).toBe('failed at quantize: no awq \\| <script>alert(1)</script> here');
  });

  it('says what it measured on', () => {
    expect(md).toMatch(/^### tiny-phi on cpu: 6 schemes compared/);
    expect(md).toContain('Quality: 8 sequences of 64 tokens sampled from the unquantized model (seed 0), scored against the unquantized model; reference ppl 10.0 over 504 tokens.');
    expect(md).toContain('median of 3 runs after 1 warm-up');
    expect(md).toContain('Gates (reported, not enforced): ppl_delta_pct ≤ 25.');
    expect(md).toContain('★ on the Pareto front');
  });
});

describe('report.html', () => {
  const html = renderCompareHtml(fixtureReport());

  it('is self-contained: no script, no external reference, a CSP that forbids loading anything', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\s(src|href)=/i);
    expect(html).not.toMatch(/@import|url\(|@font-face/i);
    // The only URL is the SVG namespace, which is a name, not a request.
    expect(html.match(/https?:\/\/[^\s"']+/g)).toEqual(['http://www.w3.org/2000/svg', 'http://www.w3.org/2000/svg']);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).toContain('no awq | &lt;script&gt;alert(1)&lt;/script&gt; here');
  });

  it('chooses a log-like Δppl axis only when one scheme dwarfs the rest', () => {
    expect(html).toContain('Δppl % (log scale)');
    const calm = fixtureRows().filter((r) => r.scheme !== 'ternary');
    expect(renderCompareHtml(fixtureReport(calm))).not.toContain('(log scale)');
  });

  it('with no scheme built, still renders both plots empty and the failed rows', () => {
    const out = renderCompareHtml(fixtureReport(fixtureRows().filter((r) => !r.ok)));
    expect(out.match(/no scheme has both values/g)).toHaveLength(2);
    expect(out).toContain('data-scheme="int4-awq"');
  });
});

describe('report.html in headless Chromium', () => {
  const have = chromiumPath();

  it.runIf(have)('renders both plots with every point inside its frame, the Pareto marks, every row, and no error', async () => {
    const { visit, page } = await renderReport(renderCompareHtml(fixtureReport()), join(dir, 'report.html'));
    expectCleanPage(visit);
    expect(page.title).toBe('tiny-phi on cpu: scheme comparison');
    const q = page.plots['plot-quality'];
    expect(q.points).toEqual(['fp32', 'int8', 'int4-rtn', 'int4-hqq', 'ternary']);
    expect(q.pareto).toEqual(['fp32', 'int8', 'int4-rtn', 'ternary']);
    expect(q.frontLine).toBe(4);
    expect(q.outside).toEqual([]);
    const s = page.plots['plot-speed'];
    // int4-hqq has no speed; smaller-and-faster front: ternary (0.55 MB, 1900/s) and int8 (1.51 MB, 2300/s).
    expect(s.points).toEqual(['fp32', 'int8', 'int4-rtn', 'ternary']);
    expect(s.pareto).toEqual(['int8', 'ternary']);
    expect(s.frontLine).toBe(2);
    expect(s.outside).toEqual([]);
    expect(page.rows.map((r) => r.scheme)).toEqual(['fp32', 'int8', 'int4-rtn', 'int4-hqq', 'ternary', 'int4-awq']);
    expect(page.rows.every((r) => r.cells === 12)).toBe(true);
    expect(page.rows.find((r) => r.scheme === 'int4-awq')!.classes).toContain('failed');
    expect(page.rows.find((r) => r.scheme === 'ternary')!.classes).toContain('gates-failed');
    expect(page.fonts).toEqual([]);
  }, 60_000);

  it.runIf(have)('catches console errors, and the CSP blocks a script and a network load injected into the page', async () => {
    const doctored = renderCompareHtml(fixtureReport()).replace(
      '</main>',
      '<img src="http://127.0.0.1:9/pixel.png"><script>console.error("injected")</script></main>',
    );
    const { visit } = await renderReport(doctored, join(dir, 'doctored.html'));
    expect(visit.networkRequests).toEqual([]);
    expect(visit.blockedRequests).toEqual(['http://127.0.0.1:9/pixel.png (csp)']);
    expect(visit.errors.some((e) => /Content Security Policy/.test(e) && /script/i.test(e))).toBe(true);
    expect(visit.errors.some((e) => /Content Security Policy/.test(e) && /127\.0\.0\.1/.test(e))).toBe(true);
    expect(visit.errors.join('\n')).not.toContain('injected');
    // Without the CSP the same script runs and its console.error is caught.
    const open = doctored.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, '').replace('<img src="http://127.0.0.1:9/pixel.png">', '');
    const { visit: v2 } = await renderReport(open, join(dir, 'open.html'));
    expect(v2.errors).toEqual(['console.error: ["injected"]']);
  }, 60_000);
});
