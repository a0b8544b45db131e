// How much one weight suffers from the low scheme and how much the high one would save: the layer-output error
// ||X·(Q(W) − W)ᵀ||² of each scheme's RTN quantizer, relative to the output energy ||X·Wᵀ||². The relative form is a
// noise-to-signal ratio at the layer's output, comparable across layers of different widths; with no activations it
// falls back to the weight error ||Q(W) − W||² / ||W||² (inputs assumed white).
import type { WeightMatrix } from '../formats/block.js';
import { prepareActivations, quadraticError, roundTrip, rowsToScore, scoredRows, takeRows, type ActivationSample, type RowQuantizer } from './output-error.js';

export interface SensitivityResult {
  /** Relative output error at the low scheme. */
  low: number;
  /** Relative output error at the high scheme. */
  high: number;
  /** Output energy Σ_n E[(x·w_n)²] over the scored rows, scaled to all rows (0 for a layer that never fires). */
  signal: number;
}

export function layerSensitivity(
  w: WeightMatrix,
  activations: ActivationSample | undefined,
  low: RowQuantizer,
  high: RowQuantizer,
  maxRows?: number,
): SensitivityResult {
  const { K, N } = w;
  const acts = activations && prepareActivations(activations, K);
  const rows = scoredRows(N, rowsToScore(acts, K, maxRows));
  const w0 = takeRows(w, rows);
  const scale = N / rows.length;
  const signal = scale * quadraticError(w0, K, acts);
  const relError = (q: RowQuantizer) => {
    const d = roundTrip(w0, K, q);
    const delta = new Float64Array(w0.length);
    for (let i = 0; i < w0.length; i++) delta[i] = d[i] - w0[i];
    const e = scale * quadraticError(delta, K, acts);
    return signal > 0 ? e / signal : 0;
  };
  return { low: relError(low), high: relError(high), signal };
}
