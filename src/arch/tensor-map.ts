// The generic tensor mapper: HF tensor-name templates ({layer}) → roles, read from an architecture's table.
import { ArchitectureError, CheckpointError } from '../util/errors.js';
import type { Dim } from './tensor-shapes.js';
import type { DecoderConfig } from './types.js';

/** What kind of parameter a tensor is; a synthetic checkpoint draws its values by kind (src/arch/synth.ts). */
export type InitKind = 'embedding' | 'linear' | 'norm-weight' | 'norm-bias' | 'bias';

/** One row of an architecture's tensor table; `role: null` marks a tensor the builder knowingly ignores. */
export interface TensorRule {
  readonly hf: string;
  readonly role: string | null;
  /**
   * The shape the typed config implies (checked against the safetensors header before anything is built); absent
   * only for tensors whose shape nothing depends on.
   */
  readonly shape?: readonly Dim[];
  /**
   * Whether a checkpoint of this config must hold the tensor (in every layer, for a `{layer}` template). Default:
   * every tensor with a role; ignored tensors (`role: null`) are never required.
   */
  readonly required?: (c: DecoderConfig) => boolean;
  /** The kind of parameter; absent for tensors transformers does not save (a synthetic checkpoint omits them). */
  readonly init?: InitKind;
  /**
   * Whether transformers saves the tensor for this config (so a synthetic checkpoint holds it), when that differs
   * from `required`: PhiForCausalLM always saves lm_head.bias, which the builder does not need.
   */
  readonly saved?: (c: DecoderConfig) => boolean;
}

interface CompiledRule {
  rule: TensorRule;
  re: RegExp;
  perLayer: boolean;
}

function compile(rule: TensorRule): CompiledRule {
  const escaped = rule.hf.replace(/[.*+?^$()|[\]\\]/g, '\\$&');
  const perLayer = escaped.includes('{layer}');
  return { rule, re: new RegExp(`^${escaped.replace('{layer}', '(\\d+)')}$`), perLayer };
}

function key(role: string, layer?: number): string {
  return layer === undefined ? role : `${layer}:${role}`;
}

/** A checkpoint tensor matched to its table row (and layer, for a per-layer row). */
export interface MatchedTensor {
  name: string;
  rule: TensorRule;
  layer?: number;
}

/**
 * Matches every name against the table; a name no rule matches is an error naming the tensor, since a tensor we
 * would silently drop means a model we would silently get wrong.
 */
export function matchTensors(arch: string, rules: readonly TensorRule[], names: Iterable<string>): MatchedTensor[] {
  const compiled = rules.map(compile);
  const out: MatchedTensor[] = [];
  for (const name of names) {
    let found: MatchedTensor | undefined;
    for (const c of compiled) {
      const m = c.re.exec(name);
      if (!m) continue;
      found = { name, rule: c.rule, layer: c.perLayer ? Number(m[1]) : undefined };
      break;
    }
    if (!found) {
      throw new ArchitectureError('ARCH_UNMAPPED_TENSOR', `tensor ${name} matches nothing in the ${arch} tensor map`, {
        where: `tensor ${name}`,
        fix: `this checkpoint has weights the ${arch} builder does not know (a different variant or an adapter?); add the tensor to the family's table (src/arch/families/*/tensors.ts) if it is meant to be read or ignored`,
      });
    }
    out.push(found);
  }
  return out;
}

/** The name a rule gives a tensor of `layer`. */
export function tensorName(rule: TensorRule, layer?: number): string {
  return rule.hf.replace('{layer}', String(layer ?? '?'));
}

/** The checkpoint's tensors by role, built by matching every tensor name against the table. */
export class TensorTable {
  private constructor(
    private readonly arch: string,
    private readonly rules: readonly TensorRule[],
    private readonly byRole: ReadonlyMap<string, string>,
  ) {}

  /**
   * Maps every name (see {@link matchTensors}); a layer index past `numLayers` is an error naming the tensor.
   * buildModel checks the whole checkpoint against the config first (tensor-check.ts), reporting every problem.
   */
  static build(arch: string, rules: readonly TensorRule[], names: Iterable<string>, numLayers: number): TensorTable {
    const byRole = new Map<string, string>();
    for (const { name, rule, layer } of matchTensors(arch, rules, names)) {
      if (layer !== undefined && layer >= numLayers) {
        throw new ArchitectureError('ARCH_LAYER_OUT_OF_RANGE', `tensor ${name} belongs to layer ${layer}, but config.json has ${numLayers} layers`, {
          where: `tensor ${name}`,
          fix: 'num_hidden_layers in config.json does not match the weights',
        });
      }
      if (rule.role !== null) byRole.set(key(rule.role, layer), name);
    }
    return new TensorTable(arch, rules, byRole);
  }

  has(role: string, layer?: number): boolean {
    return this.byRole.has(key(role, layer));
  }

  /** The HF name of a role's tensor; throws naming the expected tensor when the checkpoint lacks it. */
  get(role: string, layer?: number): string {
    const name = this.byRole.get(key(role, layer));
    if (name) return name;
    const rule = this.rules.find((r) => r.role === role);
    const expected = rule ? tensorName(rule, layer) : role;
    throw new CheckpointError('CHECKPOINT_TENSOR_MISSING', `the checkpoint has no tensor ${expected} (${this.arch} role ${role})`, {
      where: `tensor ${expected}`,
      fix: 'check that every safetensors shard listed in model.safetensors.index.json is present',
    });
  }
}
