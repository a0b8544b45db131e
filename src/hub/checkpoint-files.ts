// Which files of a hub repo a build needs: config, tokenizer files and the safetensors weights (one file, or the
// shards a model.safetensors.index.json names), and nothing else (no .bin/.pth/.gguf/onnx copies, no README).
import { readFile } from 'node:fs/promises';
import { CheckpointError } from '../util/errors.js';
import { assertRepoFilePath } from './repo-id.js';

export interface CheckpointFile {
  name: string;
  /** A missing required file is an error; a missing optional one is skipped. */
  required: boolean;
}

/** Files besides the weights, in the order they are fetched and listed. */
export const CHECKPOINT_FILES: readonly CheckpointFile[] = Object.freeze([
  { name: 'config.json', required: true },
  { name: 'generation_config.json', required: false },
  { name: 'tokenizer.json', required: true },
  { name: 'tokenizer_config.json', required: true },
  { name: 'special_tokens_map.json', required: false },
  { name: 'tokenizer.model', required: false },
  { name: 'added_tokens.json', required: false },
  { name: 'chat_template.jinja', required: false },
]);

export const SAFETENSORS_SINGLE = 'model.safetensors';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';

/** The shard files a safetensors index names, each once, sorted (model-00001-of-00002... first). */
export async function shardsOfIndex(indexPath: string, repo: string): Promise<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (e) {
    throw new CheckpointError('BAD_SAFETENSORS_INDEX', `${SAFETENSORS_INDEX} of ${repo} is not valid JSON`, {
      file: indexPath,
      fix: 'delete this file from the cache and fetch again',
      cause: e,
    });
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) {
    throw new CheckpointError('BAD_SAFETENSORS_INDEX', `${SAFETENSORS_INDEX} of ${repo} has no weight_map object`, {
      file: indexPath,
    });
  }
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string') {
      throw new CheckpointError('BAD_SAFETENSORS_INDEX', `weight_map entry for ${tensor} is not a file name`, {
        file: indexPath,
        where: tensor,
      });
    }
    assertRepoFilePath(file, repo, SAFETENSORS_INDEX);
    shards.add(file);
  }
  if (shards.size === 0) {
    throw new CheckpointError('BAD_SAFETENSORS_INDEX', `${SAFETENSORS_INDEX} of ${repo} names no shard files`, {
      file: indexPath,
    });
  }
  return [...shards].sort();
}
