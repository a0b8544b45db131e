// Hugging Face hub sources: fetch a checkpoint into the shared (Python-layout) cache, and the rules that go with it.
export { fetchCheckpoint, type HubCheckpoint, type HubProgress, type HubSourceOptions } from './fetch-checkpoint.js';
export { isHubId, parseHubId, repoFolderName, type HubRef } from './repo-id.js';
export { hubCacheDir, hubEndpoint, hubOffline, hubToken, hfHome } from './env.js';
export { CHECKPOINT_FILES, SAFETENSORS_INDEX, SAFETENSORS_SINGLE } from './checkpoint-files.js';
export { HubHttpError, HubNetworkError } from './http.js';
export { formatBytes, formatHubProgress } from './progress-text.js';
