// Test helper: what a rendered report.html must show, read from the live DOM in headless Chromium.
import { writeFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { visitPage, type PageVisit } from './chromium.js';

export interface RenderedReport {
  plots: Record<string, { points: string[]; pareto: string[]; frontLine: number; outside: string[] }>;
  rows: { scheme: string; cells: number; classes: string }[];
  title: string;
  fonts: string[];
}

/** Reads both plots (points, Pareto marks, front line vertices, points drawn outside the frame) and the table rows. */
const READ_REPORT = `(() => {
  const plots = {};
  for (const svg of document.querySelectorAll('svg.plot')) {
    const frame = svg.querySelector('rect.frame').getBBox();
    const points = [...svg.querySelectorAll('g.point')];
    const outside = points.filter((g) => {
      const b = g.querySelector('circle.dot').getBBox();
      const cx = b.x + b.width / 2, cy = b.y + b.height / 2;
      return cx < frame.x || cx > frame.x + frame.width || cy < frame.y || cy > frame.y + frame.height;
    }).map((g) => g.dataset.scheme);
    const line = svg.querySelector('polyline.pareto-front');
    plots[svg.id] = {
      points: points.map((g) => g.dataset.scheme),
      pareto: points.filter((g) => g.classList.contains('pareto')).map((g) => g.dataset.scheme),
      frontLine: line ? line.points.numberOfItems : 0,
      outside,
    };
  }
  const rows = [...document.querySelectorAll('#results tbody tr')].map((tr) => ({ scheme: tr.dataset.scheme, cells: tr.cells.length, classes: tr.className }));
  return { plots, rows, title: document.title, fonts: [...document.fonts].map((f) => f.family) };
})()`;

export async function renderReport(html: string, file: string, screenshot?: string): Promise<{ visit: PageVisit; page: RenderedReport }> {
  await writeFile(file, html);
  const visit = await visitPage(file, READ_REPORT, { screenshot: !!screenshot });
  if (screenshot && visit.screenshot) await writeFile(screenshot, visit.screenshot);
  return { visit, page: visit.value as RenderedReport };
}

/** No console error, no exception, no request leaving the file. */
export function expectCleanPage(visit: PageVisit): void {
  expect(visit.errors, visit.errors.join('\n')).toEqual([]);
  expect(visit.networkRequests).toEqual([]);
  expect(visit.blockedRequests).toEqual([]);
}
