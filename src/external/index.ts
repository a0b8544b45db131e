// The external builders (onnxruntime-genai's model builder, Olive): what the pipeline imports.
export { runExternalBuilder, EXTERNAL_WORK_DIR, type ExternalBuildRequest, type ExternalBuildResult } from './run-external.js';
export { detectExternalBuilder, type ExternalToolInfo, type DetectOptions } from './detect.js';
export { parseBuilderOptions, GenaiBuilderOptionsSchema, OliveBuilderOptionsSchema, type GenaiBuilderOptions, type OliveBuilderOptions } from './options.js';
export { MIN_GENAI_VERSION, MIN_OLIVE_VERSION, MIN_TRANSFORMERS_VERSION, type ExternalBuilderKind } from './requirements.js';
export { ingestToolOutput, type IngestResult } from './ingest.js';
