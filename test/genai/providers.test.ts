// The one provider check and the provider writer: a package's genai_config.json selects exactly its target's.
import { describe, expect, it } from 'vitest';
import { providerProblem, selectedProviders, withProviders } from '../../src/genai/providers.js';
import type { GenaiConfig } from '../../src/genai/schema.js';
import { getTarget } from '../../src/target/index.js';

const layoutOnly: GenaiConfig = { model: { type: 'phi3', decoder: { head_size: 16, session_options: { log_id: 'x', provider_options: [] } } } };

describe('providers', () => {
  it('withProviders sets the target’s options and keeps everything else; the input is not changed', () => {
    const cuda = withProviders(layoutOnly, getTarget('cuda'));
    expect(selectedProviders(cuda)).toEqual(['cuda']);
    expect(cuda.model?.decoder?.session_options?.log_id).toBe('x');
    expect(cuda.model?.decoder?.head_size).toBe(16);
    expect(selectedProviders(layoutOnly)).toEqual([]);
    expect(selectedProviders(withProviders({}, getTarget('dml')))).toEqual(['dml']);
  });

  it('providerProblem: exactly the target’s providers, none for the CPU EP', () => {
    expect(providerProblem(layoutOnly, getTarget('cpu'))).toBeUndefined();
    expect(providerProblem(withProviders(layoutOnly, getTarget('cuda')), getTarget('cuda'))).toBeUndefined();
    expect(providerProblem(withProviders(layoutOnly, getTarget('cuda')), getTarget('mobile'))).toBe(
      'genai_config.json selects provider [cuda]; a mobile package selects [] (model.decoder.session_options.provider_options)',
    );
    expect(providerProblem(layoutOnly, getTarget('dml'))).toMatch(/selects providers \[\]; a dml package selects \[dml\]/);
  });
});
