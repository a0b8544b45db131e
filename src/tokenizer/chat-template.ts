// Chat templates rendered by @huggingface/jinja with the variables transformers' apply_chat_template passes.
import { Template } from '@huggingface/jinja';
import { CheckpointError } from '../util/errors.js';

export interface ChatMessage {
  role: string;
  content: string;
  /** Other message fields some templates read (name, tool_calls, ...). */
  [key: string]: unknown;
}

export interface RenderOptions {
  addGenerationPrompt: boolean;
  /** bos_token, eos_token, ... as strings (undefined ones are left out, as transformers does). */
  specialTokens: Record<string, string | string[] | undefined>;
  variables?: Record<string, unknown>;
  /** For error messages: which template this is. */
  source: string;
}

const compiled = new Map<string, Template>();

/** Renders `template` for `messages` (templates are parsed once per process). */
export function renderChatTemplate(template: string, messages: readonly ChatMessage[], opts: RenderOptions): string {
  let t = compiled.get(template);
  if (!t) {
    try {
      t = new Template(template);
    } catch (e) {
      throw new CheckpointError('CHAT_TEMPLATE_SYNTAX', `the chat template does not parse: ${(e as Error).message}`, {
        where: opts.source,
        fix: 'fix the template in tokenizer_config.json / chat_template.jinja',
        cause: e,
      });
    }
    compiled.set(template, t);
  }
  const specials = Object.fromEntries(Object.entries(opts.specialTokens).filter(([, v]) => v !== undefined));
  try {
    return t.render({
      ...specials,
      ...opts.variables,
      messages,
      add_generation_prompt: opts.addGenerationPrompt,
    });
  } catch (e) {
    // raise_exception(...) inside templates lands here too (e.g. "roles must alternate").
    throw new CheckpointError('CHAT_TEMPLATE_FAILED', `the chat template failed: ${(e as Error).message}`, {
      where: opts.source,
      fix: 'check the messages against what the template accepts (roles, order)',
      cause: e,
    });
  }
}
