// Pareto fronts checked against hand-worked point sets, for both directions of each axis.
import { describe, expect, it } from 'vitest';
import { paretoFront } from '../../src/compare/pareto.js';

describe('paretoFront', () => {
  // bits/weight vs Δppl%: fp32 (32, 0), int8 (9, 0.5), int4 (5, 10), hqq (9.5, 2) dominated by int8, ternary (3, 70),
  // a worse int4 (5, 12) dominated by int4.
  const pts = [
    { x: 32, y: 0 },
    { x: 9, y: 0.5 },
    { x: 5, y: 10 },
    { x: 9.5, y: 2 },
    { x: 3, y: 70 },
    { x: 5, y: 12 },
  ];

  it('min/min keeps the points nothing beats, ordered by x', () => {
    expect(paretoFront(pts, { x: 'min', y: 'min' })).toEqual([4, 2, 1, 0]);
  });

  it('direction matters: min size / max speed', () => {
    const speed = [
      { x: 5.2, y: 1600 },
      { x: 0.9, y: 1700 },
      { x: 1.5, y: 2300 },
      { x: 0.55, y: 1900 },
    ];
    // (0.9, 1700) is beaten by (0.55, 1900); (5.2, 1600) by all.
    expect(paretoFront(speed, { x: 'min', y: 'max' })).toEqual([3, 2]);
    expect(paretoFront(speed, { x: 'max', y: 'min' })).toEqual([0]);
  });

  it('equal points both stay; a tie on one axis is decided by the other', () => {
    expect(paretoFront([{ x: 1, y: 1 }, { x: 1, y: 1 }], { x: 'min', y: 'min' })).toEqual([0, 1]);
    expect(paretoFront([{ x: 1, y: 2 }, { x: 1, y: 1 }], { x: 'min', y: 'min' })).toEqual([1]);
  });

  it('non-finite points are never on the front and never dominate', () => {
    expect(paretoFront([{ x: NaN, y: 0 }, { x: 2, y: 2 }, { x: 1, y: Infinity }], { x: 'min', y: 'min' })).toEqual([1]);
    expect(paretoFront([], { x: 'min', y: 'min' })).toEqual([]);
  });
});
