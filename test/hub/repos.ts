// Fake hub repos for the hub tests: a sharded checkpoint with two commits, a single-file one, a gated one and one
// with only PyTorch weights. Weight files are pseudo-random bytes (the hub layer never parses them).
import { pseudoRandomBytes, type FakeFile, type FakeRepoSpec } from '../helpers/hub-server.js';

export const SHARDED = 'acme/tiny-phi';
export const SINGLE = 'acme/single-phi';
export const GATED = 'acme/gated-phi';
export const BIN_ONLY = 'acme/bin-only';
export const SHARD1 = 'model-00001-of-00002.safetensors';
export const SHARD2 = 'model-00002-of-00002.safetensors';
export const GOOD_TOKEN = 'hf_fakeGoodTokenAbcdefghijklmnopqrstuv';

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

function tokenizerFiles(): FakeFile[] {
  return [
    { path: 'tokenizer.json', content: json({ version: '1.0', model: { type: 'BPE', vocab: { a: 0, b: 1 }, merges: [] } }) },
    { path: 'tokenizer_config.json', content: json({ bos_token: '<s>', eos_token: '<|endoftext|>', chat_template: '{{ messages }}' }) },
    { path: 'special_tokens_map.json', content: json({ bos_token: '<s>', eos_token: '<|endoftext|>' }) },
  ];
}

function index(shards: Record<string, string[]>): string {
  const weight_map: Record<string, string> = {};
  for (const [file, tensors] of Object.entries(shards)) for (const t of tensors) weight_map[t] = file;
  return json({ metadata: { total_size: 500_000 }, weight_map });
}

/** Files a build must not download, present in the repos to prove they are skipped. */
const unrelated: FakeFile[] = [
  { path: 'README.md', content: '# tiny phi\n' },
  { path: 'pytorch_model.bin', content: pseudoRandomBytes(4096, 99) },
  { path: 'onnx/model.onnx', content: pseudoRandomBytes(2048, 98), lfs: true },
];

export function fakeRepos(): FakeRepoSpec[] {
  const shardIndex = index({ [SHARD1]: ['model.embed_tokens.weight', 'model.layers.0.mlp.down_proj.weight'], [SHARD2]: ['model.norm.weight'] });
  return [
    {
      id: SHARDED,
      commits: [
        {
          refs: ['v1.0'],
          files: [
            { path: 'config.json', content: json({ architectures: ['Phi3ForCausalLM'], hidden_size: 64 }) },
            { path: 'generation_config.json', content: json({ bos_token_id: 1, eos_token_id: 2 }) },
            ...tokenizerFiles(),
            { path: 'model.safetensors.index.json', content: shardIndex },
            { path: SHARD1, content: pseudoRandomBytes(300_000, 1) },
            { path: SHARD2, content: pseudoRandomBytes(200_000, 2) },
            ...unrelated,
          ],
        },
        {
          refs: ['main'],
          files: [
            { path: 'config.json', content: json({ architectures: ['Phi3ForCausalLM'], hidden_size: 64, rope_theta: 10000 }) },
            { path: 'generation_config.json', content: json({ bos_token_id: 1, eos_token_id: 2 }) },
            ...tokenizerFiles(),
            { path: 'model.safetensors.index.json', content: shardIndex },
            { path: SHARD1, content: pseudoRandomBytes(300_000, 1) },
            { path: SHARD2, content: pseudoRandomBytes(200_000, 3) },
            ...unrelated,
          ],
        },
      ],
    },
    {
      id: SINGLE,
      commits: [
        {
          refs: ['main'],
          files: [
            { path: 'config.json', content: json({ architectures: ['Phi3ForCausalLM'] }) },
            ...tokenizerFiles(),
            { path: 'tokenizer.model', content: pseudoRandomBytes(5000, 7) },
            { path: 'chat_template.jinja', content: '{% for m in messages %}{{ m.content }}{% endfor %}' },
            { path: 'model.safetensors', content: pseudoRandomBytes(150_000, 5) },
          ],
        },
      ],
    },
    {
      id: GATED,
      gated: true,
      commits: [
        {
          refs: ['main'],
          files: [
            { path: 'config.json', content: json({ architectures: ['Phi3ForCausalLM'] }) },
            ...tokenizerFiles(),
            { path: 'model.safetensors', content: pseudoRandomBytes(80_000, 11) },
          ],
        },
      ],
    },
    {
      id: BIN_ONLY,
      commits: [{ refs: ['main'], files: [{ path: 'config.json', content: json({}) }, ...tokenizerFiles(), unrelated[1]!] }],
    },
  ];
}
