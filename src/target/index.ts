// Every deployment target, in one list (adding a target: its file, and one line here); look-up by id with an error
// that names the known ones. The list's order is the tie-break where targets share an execution provider.
import { UsageError } from '../util/errors.js';
import { cpuTarget } from './cpu.js';
import { cudaTarget } from './cuda.js';
import { dmlTarget } from './dml.js';
import { mobileTarget } from './mobile.js';
import type { TargetSpec } from './types.js';

export type { AttentionLayout, ActivationDtype, ExecutionDevice, ExecutionProvider, GraphLayout, ProviderOptions, TargetSpec } from './types.js';

export const TARGETS = [cpuTarget, cudaTarget, dmlTarget, mobileTarget] as const satisfies readonly TargetSpec[];

/** One of the registered targets. */
export type Target = (typeof TARGETS)[number];
export type TargetId = Target['id'];

export const TARGET_IDS: readonly TargetId[] = TARGETS.map((t) => t.id);

export function isTargetId(s: string): s is TargetId {
  return (TARGET_IDS as readonly string[]).includes(s);
}

export function getTarget(id: string): Target {
  const t = TARGETS.find((x) => x.id === id);
  if (!t) throw new UsageError(`unknown target '${id}'`, { fix: `use one of: ${TARGET_IDS.join(', ')}` });
  return t;
}

/** The first registered target whose packages run on `ep` (cpu before mobile), or undefined. */
export function targetForExecutionProvider(ep: string): Target | undefined {
  return TARGETS.find((t) => t.executionProvider === ep);
}
