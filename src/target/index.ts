// Every deployment target, in one list; look-up by id with an error that names the known ones.
import { UsageError } from '../util/errors.js';
import { cpuTarget } from './cpu.js';
import { cudaTarget } from './cuda.js';
import { dmlTarget } from './dml.js';
import { mobileTarget } from './mobile.js';
import type { Target, TargetId } from './types.js';

export type { Target, TargetId, AttentionLayout, ActivationDtype, ProviderOptions } from './types.js';

export const TARGETS: readonly Target[] = [cpuTarget, cudaTarget, dmlTarget, mobileTarget];

export const TARGET_IDS: readonly TargetId[] = TARGETS.map((t) => t.id);

export function isTargetId(s: string): s is TargetId {
  return (TARGET_IDS as readonly string[]).includes(s);
}

export function getTarget(id: string): Target {
  const t = TARGETS.find((x) => x.id === id);
  if (!t) throw new UsageError(`unknown target '${id}'`, { fix: `use one of: ${TARGET_IDS.join(', ')}` });
  return t;
}
