// defineTarget: a target file's one call — the spec frozen, with op support answered from its execution provider's
// kernel table (ops.ts).
import { supportsOpOn } from './ops.js';
import type { TargetSpec } from './types.js';

export function defineTarget<const S extends Omit<TargetSpec, 'supportsOp'>>(spec: S): Readonly<S> & TargetSpec {
  return Object.freeze({ ...spec, supportsOp: (domain: string, op: string) => supportsOpOn(spec.executionProvider, domain, op) });
}
