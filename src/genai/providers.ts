// The execution providers a genai_config.json selects: onnxruntime-genai takes them from the config, so a package's
// config must select its target's, and the one check of that lives here.
import type { ProviderOptions, Target } from '../target/types.js';
import type { GenaiConfig } from './schema.js';

/** Provider names genai_config.json selects, in order (none: the CPU EP). */
export function selectedProviders(config: GenaiConfig): string[] {
  return (config.model?.decoder?.session_options?.provider_options ?? []).flatMap((o) => Object.keys(o));
}

/**
 * A copy of `config` selecting `target`'s execution provider with its options; everything else is kept as it is.
 * The package stage calls this: models before it are laid out for a graph layout, not for a target.
 */
export function withProviders<C extends GenaiConfig>(config: C, target: Pick<Target, 'genaiProviderOptions'>): C {
  const out = structuredClone(config);
  const model = (out.model ??= {});
  const decoder = (model.decoder ??= {});
  const session = (decoder.session_options ??= {});
  session.provider_options = target.genaiProviderOptions.map((p) => structuredClone(p) as ProviderOptions);
  return out;
}

/** The one provider check: genai_config.json must select exactly the target's providers (none for the CPU EP). */
export function providerProblem(config: GenaiConfig, target: Pick<Target, 'id' | 'genaiProviderOptions'>): string | undefined {
  const providers = selectedProviders(config);
  const want = target.genaiProviderOptions.flatMap((o) => Object.keys(o));
  if (providers.join() === want.join()) return undefined;
  return `genai_config.json selects provider${providers.length === 1 ? '' : 's'} [${providers.join(', ')}]; a ${target.id} package selects [${want.join(', ')}] (model.decoder.session_options.provider_options)`;
}
