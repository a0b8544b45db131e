// onnxruntime-node sessions, opened in one place: the CPU execution provider, quiet logs, a bounded thread count, and
// one typed error naming the model when onnxruntime refuses it. onnxruntime-node is imported on first use, so
// commands that never run a model (and --help) do not pay for loading its native library.
import type * as Ort from 'onnxruntime-node';
import { OnnxError } from '../util/errors.js';
import { checkThreads } from './threads.js';

export type OrtModule = typeof Ort;

let ortModule: Promise<OrtModule> | undefined;

/** The onnxruntime-node module (loaded once). */
export function loadOrt(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node').then((m) => {
    const mod = m as OrtModule & { default?: OrtModule };
    return mod.InferenceSession ? mod : mod.default!;
  });
  return ortModule;
}

export interface OrtSessionOptions {
  /** Intra-op threads (default: onnxruntime's, all cores); bounded by {@link checkThreads}. */
  intraOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** 3 (errors only) by default: warnings about unused initializers would drown our own output. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Write the optimised graph here (offline pre-optimisation). */
  optimizedModelFilePath?: string;
  /** onnxruntime session config entries (string values). */
  sessionConfig?: Record<string, string>;
  /** What to tell the user when onnxruntime refuses the model. */
  fix?: string;
}

/** Opens a session on a model file or on model bytes; a model onnxruntime refuses is an OnnxError naming it. */
export async function openOrtSession(model: string | Uint8Array, opts: OrtSessionOptions = {}): Promise<Ort.InferenceSession> {
  checkThreads(opts.intraOpNumThreads);
  const ort = await loadOrt();
  const options: Ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    logSeverityLevel: opts.logSeverityLevel ?? 3,
  };
  // The binding rejects keys present with an undefined value.
  if (opts.intraOpNumThreads !== undefined) options.intraOpNumThreads = opts.intraOpNumThreads;
  if (opts.optimizedModelFilePath !== undefined) options.optimizedModelFilePath = opts.optimizedModelFilePath;
  if (opts.sessionConfig) options.extra = { session: opts.sessionConfig };
  try {
    return typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  } catch (e) {
    throw new OnnxError('ORT_LOAD_FAILED', `onnxruntime cannot load the model: ${(e as Error).message}`, {
      file: typeof model === 'string' ? model : undefined,
      fix: opts.fix ?? 'run `pnpm pipeline inspect` on it; rebuild if the file or its .data file is damaged',
      cause: e,
    });
  }
}
