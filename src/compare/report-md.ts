// report.md: the comparison as a markdown table people paste into a pull request, with what it was measured on.
import { COLUMNS, describeMeasurement } from './cells.js';
import type { CompareReport } from './compare-report.js';

export function renderCompareMarkdown(r: CompareReport): string {
  const lines: string[] = [];
  lines.push(`### ${r.model} on ${r.target}: ${r.rows.length} scheme${r.rows.length === 1 ? '' : 's'} compared`, '');
  lines.push(markdownTable(r), '');
  if (r.rows.some((x) => x.pareto)) lines.push('★ on the Pareto front of Δppl against bits per weight (lower is better on both).', '');
  for (const l of describeMeasurement(r)) lines.push(l);
  lines.push(`Source: ${r.source} (recipe ${r.recipe}).`, '');
  return lines.join('\n');
}

/** The table alone (what the CLI prints). */
export function markdownTable(r: CompareReport): string {
  const head = `| ${COLUMNS.map((c) => c.title).join(' | ')} |`;
  const rule = `|${COLUMNS.map((c) => (c.numeric ? '---:' : ':---')).join('|')}|`;
  const body = r.rows.map((row) => {
    const cells = COLUMNS.map((c) => {
      const v = c.cell(row);
      return escapeCell(c.key === 'scheme' && row.pareto ? `${v} ★` : v);
    });
    return `| ${cells.join(' | ')} |`;
  });
  return [head, rule, ...body].join('\n');
}

/** A cell stays one cell: pipes escaped, line breaks flattened. */
function escapeCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}
