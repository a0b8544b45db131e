// The architecture registry: one static list of specs, looked up by Hugging Face architecture name.
import { ArchitectureError } from '../util/errors.js';
import { phiSpec } from './families/phi/graph.js';
import { phi3Spec } from './families/phi3/graph.js';
import type { ArchSpec } from './types.js';

export type { ArchSpec, BuildContext, DecoderConfig, GenaiModelType } from './types.js';

// Each spec reads its own family's config type; the registry only routes by name.
export const ARCHITECTURES: readonly ArchSpec<never>[] = [phi3Spec, phiSpec];

export function supportedArchitectures(): string[] {
  return ARCHITECTURES.flatMap((a) => a.hfArchitectures);
}

/** The spec for an HF architecture name; an unknown name is an error listing the supported ones. */
export function getArchitecture(name: string | undefined): ArchSpec<never> {
  const spec = ARCHITECTURES.find((a) => name !== undefined && a.hfArchitectures.includes(name));
  if (!spec) {
    throw new ArchitectureError('ARCH_UNSUPPORTED', `architecture ${name ?? '(none: config.json has no architectures)'} is not supported by the native builder`, {
      where: 'config.json architectures[0]',
      fix: `supported: ${supportedArchitectures().join(', ')}; for others use the onnxruntime-genai builder`,
    });
  }
  return spec;
}
