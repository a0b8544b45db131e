// The Pareto front of a set of 2-D points: those no other point beats on one axis without losing on the other.
export type Sense = 'min' | 'max';

export interface Point2 {
  x: number;
  y: number;
}

/**
 * Indices of the points on the front, ordered by x (ascending). A point is dominated when another is at least as
 * good on both axes and better on one; equal points do not dominate each other, so both stay. Points with a
 * non-finite coordinate are never on the front.
 */
export function paretoFront(points: readonly Point2[], sense: { x: Sense; y: Sense }): number[] {
  const better = (a: number, b: number, s: Sense) => (s === 'min' ? a < b : a > b);
  const noWorse = (a: number, b: number, s: Sense) => (s === 'min' ? a <= b : a >= b);
  const ok = (p: Point2) => Number.isFinite(p.x) && Number.isFinite(p.y);
  const dominates = (a: Point2, b: Point2) =>
    noWorse(a.x, b.x, sense.x) && noWorse(a.y, b.y, sense.y) && (better(a.x, b.x, sense.x) || better(a.y, b.y, sense.y));
  const front: number[] = [];
  points.forEach((p, i) => {
    if (ok(p) && !points.some((q, j) => j !== i && ok(q) && dominates(q, p))) front.push(i);
  });
  return front.sort((a, b) => points[a].x - points[b].x || points[a].y - points[b].y);
}
