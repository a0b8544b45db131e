// A model's tokenizer as transformers applies it: tokenizer.json run by @huggingface/tokenizers, special tokens and
// add_bos/add_eos from tokenizer_config.json, and the chat template rendered by @huggingface/jinja.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { CheckpointError } from '../util/errors.js';
import { renderChatTemplate, type ChatMessage } from './chat-template.js';
import { MAX_PIECE_CHARS, textPieces } from './text-pieces.js';
import { readTokenizerFiles, type TokenizerFiles, type TokenizerJson } from './tokenizer-files.js';

export type { ChatMessage } from './chat-template.js';

export interface EncodeOptions {
  /** Add the special tokens of the post-processor (BOS for Phi-3), as transformers' add_special_tokens. Default true. */
  addSpecialTokens?: boolean;
  /**
   * Longer text is tokenized in pieces of at most this many characters (default MAX_PIECE_CHARS; Infinity: in one
   * call), cut where the ids do not change — see text-pieces.ts.
   */
  maxPieceChars?: number;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Which template when the config holds several (default: 'default'). */
  templateName?: string;
  /** Extra variables for the template (tools, documents, date strings, ...). */
  variables?: Record<string, unknown>;
}

/** What a piece after a cut is tokenized behind (see encodeContinuation). */
const CONTINUATION_ANCHOR = '\n';
/** Any short plain text: encoded with and without special tokens, it shows what the post-processor adds. */
const WRAP_PROBE = 'a';

/**
 * Tokenizer classes whose transformers implementation rebuilds the post-processor from add_bos_token /
 * add_eos_token (LlamaTokenizerFast.update_post_processor and its copies), with their defaults.
 */
const REBUILDS_POST_PROCESSOR: Record<string, { bos: boolean; eos: boolean }> = {
  LlamaTokenizer: { bos: true, eos: false },
  LlamaTokenizerFast: { bos: true, eos: false },
  CodeLlamaTokenizer: { bos: true, eos: false },
  CodeLlamaTokenizerFast: { bos: true, eos: false },
  GemmaTokenizer: { bos: true, eos: false },
  GemmaTokenizerFast: { bos: true, eos: false },
};

export class Tokenizer {
  readonly dir: string;
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
  readonly hasChatTemplate: boolean;
  private readonly hf: HfTokenizer;
  private readonly files: TokenizerFiles;
  /** Contents of tokenizer.json's added tokens: a cut between pieces never falls inside or next to one. */
  private readonly addedTokens: string[];
  private anchorIds?: number[];
  private wrap?: { before: number[]; after: number[] };

  private constructor(files: TokenizerFiles) {
    this.files = files;
    this.dir = files.dir;
    const config = {
      tokenizer_class: files.tokenizerClass,
      bos_token: files.bosToken,
      eos_token: files.eosToken,
      unk_token: files.unkToken,
      pad_token: files.padToken,
      additional_special_tokens: files.additionalSpecialTokens,
      // Unset means true in transformers 4.x (github.com/huggingface/transformers/issues/42898); Phi configs set it.
      clean_up_tokenization_spaces: files.cleanUpTokenizationSpaces ?? true,
    };
    const json = withTransformersPostProcessor(files);
    try {
      this.hf = new HfTokenizer(json, config);
    } catch (e) {
      throw new CheckpointError('TOKENIZER_UNSUPPORTED', `@huggingface/tokenizers cannot load it: ${(e as Error).message}`, {
        file: `${files.dir}/tokenizer.json`,
        fix: 'check that the file is a tokenizers-library tokenizer.json (not a sentencepiece .model)',
        cause: e,
      });
    }
    this.bosToken = files.bosToken;
    this.eosToken = files.eosToken;
    this.bosTokenId = files.bosToken === undefined ? undefined : this.hf.token_to_id(files.bosToken);
    this.eosTokenId = files.eosToken === undefined ? undefined : this.hf.token_to_id(files.eosToken);
    this.padTokenId = files.padToken === undefined ? undefined : this.hf.token_to_id(files.padToken);
    this.hasChatTemplate = files.chatTemplates.size > 0;
    this.addedTokens = files.tokenizerJson.added_tokens.map((t) => t.content);
  }

  /** Loads the tokenizer of a model or checkpoint folder (tokenizer.json required). */
  static async load(dir: string): Promise<Tokenizer> {
    return new Tokenizer(await readTokenizerFiles(dir));
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecialTokens = opts.addSpecialTokens ?? true;
    const maxPiece = opts.maxPieceChars ?? MAX_PIECE_CHARS;
    if (text.length <= maxPiece) return this.hf.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    const wrap = addSpecialTokens ? this.specialTokenWrap() : { before: [], after: [] };
    const ids = [...wrap.before];
    let first = true;
    for (const piece of textPieces(text, { maxChars: maxPiece, keep: this.addedTokens })) {
      const pieceIds = first ? this.bareIds(piece) : this.encodeContinuation(piece);
      first = false;
      for (const id of pieceIds) ids.push(id);
    }
    for (const id of wrap.after) ids.push(id);
    return ids;
  }

  /**
   * The ids of a piece that follows a cut. Tokenized alone it would be the start of a text, and SentencePiece-style
   * tokenizers (Phi-3: a `Prepend ▁` normalizer) begin a text with a word boundary — a spurious space before
   * "ord" of a word cut as "w|ord". So the piece is tokenized after a line break, which ends a token in every
   * tokenizer we use, and the line break's own ids are dropped.
   */
  private encodeContinuation(piece: string): number[] {
    const anchor = (this.anchorIds ??= this.bareIds(CONTINUATION_ANCHOR));
    const ids = this.bareIds(CONTINUATION_ANCHOR + piece);
    if (anchor.every((id, i) => ids[i] === id)) return ids.slice(anchor.length);
    // The line break merged into the piece's first token (a tokenizer unlike any Phi's): the piece alone is the
    // closest we can get.
    return this.bareIds(piece);
  }

  /** Ids of text without the post-processor's special tokens. */
  private bareIds(text: string): number[] {
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** The ids the post-processor puts around a text (BOS for Phi-3), found by encoding a probe with and without. */
  private specialTokenWrap(): { before: number[]; after: number[] } {
    if (this.wrap) return this.wrap;
    const bare = this.bareIds(WRAP_PROBE);
    const full: number[] = this.hf.encode(WRAP_PROBE, { add_special_tokens: true }).ids;
    for (let at = 0; at + bare.length <= full.length; at++) {
      if (bare.every((id, i) => full[at + i] === id)) {
        this.wrap = { before: full.slice(0, at), after: full.slice(at + bare.length) };
        return this.wrap;
      }
    }
    throw new CheckpointError(
      'TOKENIZER_POST_PROCESSOR',
      `the post-processor changes the ids of the text itself ('${WRAP_PROBE}': ${bare.join(',')} → ${full.join(',')}), ` +
        'so long text cannot be tokenized in pieces',
      {
        file: `${this.dir}/tokenizer.json`,
        fix: 'use a post_processor that only adds special tokens around the text (TemplateProcessing, as transformers writes)',
      },
    );
  }

  decode(ids: ArrayLike<number> | readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return ''; // the library refuses empty input; transformers returns ''
    return this.hf.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Renders the chat template to text (as transformers' apply_chat_template(tokenize=False)). */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const name = opts.templateName ?? 'default';
    const template = this.files.chatTemplates.get(name);
    if (template === undefined) {
      const known = [...this.files.chatTemplates.keys()];
      throw new CheckpointError(
        'CHAT_TEMPLATE_MISSING',
        known.length ? `no chat template named '${name}' (have: ${known.join(', ')})` : 'the tokenizer has no chat template',
        {
          file: `${this.dir}/tokenizer_config.json`,
          fix: known.length
            ? 'pick one of the listed templates'
            : 'add `chat_template` to tokenizer_config.json (or a chat_template.jinja file), or prompt without --chat',
        },
      );
    }
    return renderChatTemplate(template, messages, {
      addGenerationPrompt: opts.addGenerationPrompt ?? false,
      specialTokens: {
        bos_token: this.files.bosToken,
        eos_token: this.files.eosToken,
        unk_token: this.files.unkToken,
        pad_token: this.files.padToken,
        additional_special_tokens: this.files.additionalSpecialTokens,
      },
      variables: opts.variables,
      source: `${this.dir} chat template '${name}'`,
    });
  }

  /**
   * Chat template then tokens, as apply_chat_template(tokenize=True): the template writes its own special tokens,
   * so none are added on top.
   */
  encodeChat(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }
}

/** Loads the tokenizer of a folder; see Tokenizer.load. */
export function loadTokenizer(dir: string): Promise<Tokenizer> {
  return Tokenizer.load(dir);
}

/**
 * transformers' Llama-family fast tokenizers ignore tokenizer.json's post-processor and build a TemplateProcessing
 * from add_bos_token/add_eos_token (`<s>:0 $A:0 </s>:0`); other classes keep tokenizer.json's own.
 */
function withTransformersPostProcessor(files: TokenizerFiles): TokenizerJson {
  const defaults = files.tokenizerClass ? REBUILDS_POST_PROCESSOR[files.tokenizerClass] : undefined;
  if (!defaults) return files.tokenizerJson;
  const addBos = files.addBosToken ?? defaults.bos;
  const addEos = files.addEosToken ?? defaults.eos;
  const idOf = (content: string | undefined, what: string): [string, number] => {
    const found = content === undefined ? undefined : findTokenId(files.tokenizerJson, content);
    if (content === undefined || found === undefined) {
      throw new CheckpointError('TOKENIZER_SPECIAL_MISSING', `add_${what}_token is true but the ${what} token is not in the vocabulary`, {
        file: `${files.dir}/tokenizer_config.json`,
        fix: `set ${what}_token to a token of tokenizer.json, or add_${what}_token to false`,
      });
    }
    return [content, found];
  };
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const bos = addBos ? idOf(files.bosToken, 'bos') : undefined;
  const eos = addEos ? idOf(files.eosToken, 'eos') : undefined;
  const single = [...(bos ? [special(bos[0], 0)] : []), seq('A', 0), ...(eos ? [special(eos[0], 0)] : [])];
  const pair = [...single, ...(bos ? [special(bos[0], 1)] : []), seq('B', 1), ...(eos ? [special(eos[0], 1)] : [])];
  const specialTokens: Record<string, { id: string; ids: number[]; tokens: string[] }> = {};
  for (const t of [bos, eos]) if (t) specialTokens[t[0]] = { id: t[0], ids: [t[1]], tokens: [t[0]] };
  return { ...files.tokenizerJson, post_processor: { type: 'TemplateProcessing', single, pair, special_tokens: specialTokens } };
}

function findTokenId(json: TokenizerJson, content: string): number | undefined {
  const added = json.added_tokens.find((t) => t.content === content);
  if (added) return added.id;
  const vocab = (json.model as { vocab?: unknown }).vocab;
  if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) {
    const id = (vocab as Record<string, unknown>)[content];
    return typeof id === 'number' ? id : undefined;
  }
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...] in id order.
    const i = vocab.findIndex((e) => Array.isArray(e) && e[0] === content);
    return i >= 0 ? i : undefined;
  }
  return undefined;
}
