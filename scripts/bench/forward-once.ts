// Loads a decoder model in onnxruntime (CPU) and runs one prompt plus a few greedy steps through the KV cache:
// session load time, prefill and decode speed, peak RSS, and whether every logit is finite. Prints one JSON object.
// The quant-full benchmark runs it on the quantized full-size model, in its own process so its RSS is its own.
//
//   tsx scripts/bench/forward-once.ts <model.onnx | model folder> [--prompt 32] [--steps 8]
import { parseArgs } from 'node:util';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { Rng } from '../../src/util/random.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { prompt: { type: 'string', default: '32' }, steps: { type: 'string', default: '8' } },
});
const t0 = performance.now();
const session = await DecoderSession.open(positionals[0]);
const loadSeconds = (performance.now() - t0) / 1000;
const vocab = session.layout.vocabSize;
if (vocab === undefined) throw new Error('the vocabulary size is unknown: put the genai_config.json of the model next to it');
const rng = new Rng(7);
const prompt = Array.from({ length: Number(values.prompt) }, () => Math.floor(rng.uniform() * vocab));
let finite = true;
let maxAbsLogit = 0;
const check = (logits: Float32Array) => {
  for (const v of logits) {
    if (!Number.isFinite(v)) finite = false;
    else if (Math.abs(v) > maxAbsLogit) maxAbsLogit = Math.abs(v);
  }
};
const t1 = performance.now();
let r = await session.forward(prompt);
const prefillSeconds = (performance.now() - t1) / 1000;
check(r.logits);
const greedy: number[] = [];
const t2 = performance.now();
for (let s = 0; s < Number(values.steps); s++) {
  const last = r.logits.subarray((r.rows - 1) * vocab, r.rows * vocab);
  let best = 0;
  for (let i = 1; i < vocab; i++) if (last[i] > last[best]) best = i;
  greedy.push(best);
  r = await session.forward([best], r.cache);
  check(r.logits);
}
const decodeSeconds = (performance.now() - t2) / 1000;
await session.release();
const u = process.resourceUsage();
process.stdout.write(
  JSON.stringify({
    loadSeconds,
    promptTokens: prompt.length,
    prefillSeconds,
    decodeTokensPerSecond: greedy.length / decodeSeconds,
    greedy,
    finite,
    maxAbsLogit,
    peakRssBytes: u.maxRSS * 1024,
  }) + '\n',
);
