// Typed errors: every failure a user can cause is one of these, with a stable code, where it happened and what to do.

export interface ErrorContext {
  /** The file the error is about, if any. */
  file?: string;
  /** A tensor, node, pass, stage or field path the error is about, if any. */
  where?: string;
  /** What the user should do about it. */
  fix?: string;
  cause?: unknown;
}

/** Base class of all errors the CLI prints as one clear message (no stack trace unless --verbose). */
export class PhiForgeError extends Error {
  readonly code: string;
  readonly file?: string;
  readonly where?: string;
  readonly fix?: string;
  /** Exit code the CLI uses: 1 failed stage, 2 bad usage or bad input description (recipe, flags). */
  exitCode = 1;

  constructor(code: string, message: string, ctx: ErrorContext = {}) {
    super(formatMessage(message, ctx), ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = new.target.name;
    this.code = code;
    this.file = ctx.file;
    this.where = ctx.where;
    this.fix = ctx.fix;
  }
}

function formatMessage(message: string, ctx: ErrorContext): string {
  let head = message;
  if (ctx.where && !message.includes(ctx.where)) head = `${ctx.where}: ${head}`;
  if (ctx.file && !message.includes(ctx.file)) head = `${ctx.file}: ${head}`;
  return ctx.fix ? `${head}\n  fix: ${ctx.fix}` : head;
}

/** A malformed or unsupported ONNX model (protobuf, graph structure, external data). */
export class OnnxError extends PhiForgeError {}
/** A genai_config.json that is missing, unreadable, rejected by onnxruntime-genai's parser or not its graph's. */
export class GenaiConfigError extends PhiForgeError {}
/** A malformed or unsupported checkpoint (safetensors, config.json, index, tokenizer files, llama2.c file). */
export class CheckpointError extends PhiForgeError {}
/** An architecture we do not build, or a config value the builder cannot honour. */
export class ArchitectureError extends PhiForgeError {}
/** A quantization pass that cannot run on its input. */
export class QuantizationError extends PhiForgeError {}
/** A recipe that fails validation. */
export class RecipeError extends PhiForgeError {
  override exitCode = 2;
}
/** Bad command-line usage. */
export class UsageError extends PhiForgeError {
  override exitCode = 2;
  constructor(message: string, ctx: ErrorContext & { code?: string } = {}) {
    super(ctx.code ?? 'USAGE', message, ctx);
  }
}
/** A pipeline stage that failed, wrapping the cause. */
export class StageError extends PhiForgeError {}
/** Validation gates that failed. */
export class GateError extends PhiForgeError {}
/** A package that fails verification (tampered, truncated, missing files). */
export class PackageError extends PhiForgeError {}
/** Hub download or cache failures. */
export class HubError extends PhiForgeError {}
/** A missing or failing external tool (python, onnxruntime-genai builder, Olive). */
export class ExternalToolError extends PhiForgeError {}
/** Evaluation input problems (tokens file, dataset, reference file). */
export class EvalError extends PhiForgeError {}

export function isPhiForgeError(e: unknown): e is PhiForgeError {
  return e instanceof PhiForgeError;
}
