// The architecture registry: one static list of family specs, looked up by Hugging Face architecture name. Adding a
// family is a folder in families/ plus one line in ARCHITECTURES.
import type { HfConfigJson } from '../checkpoint/hf-config.js';
import { ArchitectureError } from '../util/errors.js';
import { phiSpec } from './families/phi/index.js';
import { phi3Spec } from './families/phi3/index.js';
import type { ArchSpec, FamilyConfig } from './types.js';

export type { ArchSpec, BuildContext, DecoderConfig, FamilyConfig, GenaiModelType } from './types.js';

export const ARCHITECTURES: readonly ArchSpec[] = [phi3Spec, phiSpec];

export function supportedArchitectures(): string[] {
  return ARCHITECTURES.flatMap((a) => a.hfArchitectures);
}

/** The spec for an HF architecture name; an unknown name is an error listing the supported ones. */
export function getArchitecture(name: string | undefined, file?: string): ArchSpec {
  const spec = ARCHITECTURES.find((a) => name !== undefined && a.hfArchitectures.includes(name));
  if (!spec) {
    throw new ArchitectureError('ARCH_UNSUPPORTED', `architecture ${name ?? '(none: config.json has no architectures)'} is not supported by the native builder`, {
      file,
      where: 'config.json architectures[0]',
      fix: `supported: ${supportedArchitectures().join(', ')}; for others use the onnxruntime-genai builder`,
    });
  }
  return spec;
}

/** A config.json parsed by its family's schema. */
export interface ArchConfig {
  spec: ArchSpec;
  config: FamilyConfig;
}

/**
 * Finds config.json's family — by `architectures[0]`, else by `model_type` — and parses the config with the family's
 * schema (once: everything downstream reads the typed result). An unknown architecture lists the supported ones.
 */
export function parseArchConfig(json: HfConfigJson): ArchConfig {
  const byType = json.architecture === undefined ? ARCHITECTURES.find((a) => json.modelType !== undefined && a.modelTypes.includes(json.modelType)) : undefined;
  const name = json.architecture ?? byType?.hfArchitectures[0];
  const spec = getArchitecture(name, json.file);
  return { spec, config: spec.parseConfig(json, name ?? spec.hfArchitectures[0]) };
}
