// Stand-in for python3/python (package probe, `-m onnxruntime_genai.models.builder`) and `olive` (run/auto-opt/
// quantize) in tests: records argv + selected env vars as one JSON line in $FAKE_TOOL_RECORD, validates arguments
// like the real argparse, and writes an output folder shaped like the real tool's, built by our own builder.
//
// Behaviour is steered by environment variables:
//   FAKE_TOOL_RECORD_ENV    comma list of env vars to record (default: PYTHONUNBUFFERED,PYTHONIOENCODING,HF_HOME,FAKE_MARKER)
//   FAKE_PYTHON_VERSION     the interpreter's version (default 3.11.7)
//   FAKE_PYTHON_MISSING     comma list of modules that fail to import (ModuleNotFoundError)
//   FAKE_PYTHON_BROKEN      comma list of modules that fail with ImportError (a broken native library)
//   FAKE_PYTHON_VERSIONS    module=version,... overriding the default versions below
//   FAKE_PYTHON_PROBE       crash | garbage: the probe exits 1 with a traceback / prints no answer
//   FAKE_TOOL_FAIL          exit code: the build prints a traceback and exits with it
//   FAKE_TOOL_HANG          a file: the build starts a grandchild, writes "<own pid> <grandchild pid>" there, waits forever
//   FAKE_TOOL_OUTPUT        none | bad-json | bad-keys | no-data | renamed | no-tokenizer | no-logits | two-models
//   FAKE_TOOL_TEMPLATE      a model folder the test built: copied instead of converting the checkpoint (faster)
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const DEFAULT_VERSIONS: Record<string, string> = {
  onnxruntime_genai: '0.10.1',
  transformers: '4.51.3',
  torch: '2.6.0+cpu',
  onnx: '1.17.0',
  olive: '0.9.2',
};

const [name, ...args] = process.argv.slice(2);
const env = process.env;
const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);

function record(extra: Record<string, unknown> = {}): void {
  const file = env.FAKE_TOOL_RECORD;
  if (!file) return;
  const keys = env.FAKE_TOOL_RECORD_ENV ? list(env.FAKE_TOOL_RECORD_ENV) : ['PYTHONUNBUFFERED', 'PYTHONIOENCODING', 'HF_HOME', 'FAKE_MARKER'];
  const picked: Record<string, string | null> = {};
  for (const k of keys) picked[k] = env[k] ?? null;
  appendFileSync(file, JSON.stringify({ name, argv: args, cwd: process.cwd(), env: picked, ...extra }) + '\n');
}

function usage(prog: string, message: string): never {
  process.stderr.write(`usage: ${prog} [-h] ...\n${prog}: error: ${message}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------------------------
// python: the package probe

function probe(): never {
  record({ probe: true });
  if (env.FAKE_PYTHON_PROBE === 'crash') {
    process.stderr.write('Traceback (most recent call last):\n  File "<string>", line 2, in <module>\nSystemError: fake interpreter is broken\n');
    process.exit(1);
  }
  if (env.FAKE_PYTHON_PROBE === 'garbage') {
    process.stdout.write('hello\n');
    process.exit(0);
  }
  const queries = JSON.parse(args[2] ?? '[]') as [string, string[], string][];
  const versions = { ...DEFAULT_VERSIONS };
  for (const kv of list(env.FAKE_PYTHON_VERSIONS)) {
    const [k, v] = kv.split('=');
    versions[k] = v;
  }
  const missing = new Set(list(env.FAKE_PYTHON_MISSING));
  const broken = new Set(list(env.FAKE_PYTHON_BROKEN));
  const packages: Record<string, { version?: string | null; error?: string }> = {};
  for (const [mod] of queries) {
    if (missing.has(mod) || !(mod in versions)) packages[mod] = { error: `ModuleNotFoundError: No module named '${mod}'` };
    else if (broken.has(mod)) packages[mod] = { error: 'ImportError: libonnxruntime.so.1: cannot open shared object file: No such file or directory' };
    else packages[mod] = { version: versions[mod] };
  }
  const out = { python: env.FAKE_PYTHON_VERSION ?? '3.11.7', executable: `/fake/${name}`, packages };
  process.stdout.write(`PHI_FORGE_PROBE=${JSON.stringify(out)}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------------------
// Building: our own converter (+ our int4 quantizer) stands in for the real exporters

interface BuildSpec {
  checkpoint: string;
  outDir: string;
  precision: string;
  ep: string;
  extra: Record<string, string | boolean | number | string[]>;
}

async function build(spec: BuildSpec): Promise<void> {
  if (env.FAKE_TOOL_HANG) await hang(env.FAKE_TOOL_HANG);
  await progress();
  if (env.FAKE_TOOL_FAIL) {
    process.stderr.write('Traceback (most recent call last):\n  File "builder.py", line 4242, in make_model\nRuntimeError: fake failure for the test\n');
    process.exit(Number(env.FAKE_TOOL_FAIL));
  }
  const mode = env.FAKE_TOOL_OUTPUT ?? 'ok';
  if (mode === 'none') return;
  const target = spec.ep === 'cuda' ? 'cuda' : spec.ep === 'dml' ? 'dml' : 'cpu';
  // The builder's I/O dtype: fp32 for fp32 and for int4 on CPU, fp16 otherwise.
  const precision = spec.precision === 'fp32' || (spec.precision === 'int4' && spec.ep === 'cpu') ? 'fp32' : 'fp16';
  if (env.FAKE_TOOL_TEMPLATE) await cp(env.FAKE_TOOL_TEMPLATE, spec.outDir, { recursive: true });
  else {
    const { convertCheckpoint } = await import('../../../src/arch/convert.js');
    await convertCheckpoint({ checkpointDir: spec.checkpoint, outDir: spec.outDir, precision, target });
  }
  if (spec.precision === 'int4') await quantize(spec);
  // The real builder leaves the Hugging Face config next to the model; ingest must ignore such extras.
  await writeFile(join(spec.outDir, 'config.json'), await readFile(join(spec.checkpoint, 'config.json')));
  await damage(spec.outDir, mode);
  process.stdout.write(`Saving GenAI config in ${spec.outDir}\n`);
}

async function quantize(spec: BuildSpec): Promise<void> {
  const { loadModel, saveModel } = await import('../../../src/onnx/model-file.js');
  const { quantizeModel } = await import('../../../src/quant/quantize-model.js');
  const path = join(spec.outDir, 'model.onnx');
  const model = await loadModel(path);
  const e = spec.extra;
  const str = (v: unknown) => (v === undefined ? undefined : String(v));
  const ops = Array.isArray(e.int4_op_types_to_quantize) ? e.int4_op_types_to_quantize : (str(e.int4_op_types_to_quantize)?.split('/') ?? ['MatMul']);
  const exclude = Array.isArray(e.int4_nodes_to_exclude) ? e.int4_nodes_to_exclude : str(e.int4_nodes_to_exclude)?.split(',');
  await quantizeModel(model, {
    scheme: 'int4',
    algo: 'rtn',
    blockSize: Number(e.int4_block_size ?? 32),
    asym: String(e.int4_is_symmetric ?? 'true').toLowerCase() === 'false',
    accuracyLevel: Number(e.int4_accuracy_level ?? (spec.ep === 'cpu' ? 4 : 0)),
    exclude,
    embeddings: ops.includes('Gather') ? 'all' : String(e.shared_embeddings ?? 'false').toLowerCase() === 'true' ? 'tied' : 'none',
    threads: 0,
  });
  await saveModel(model, path, { externalData: 'model.onnx.data', sizeThreshold: 64 });
}

/** Output variants for the ingest failure tests. */
async function damage(dir: string, mode: string): Promise<void> {
  const cfgPath = join(dir, 'genai_config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as { model: { decoder: { filename: string; outputs: Record<string, string> } } };
  switch (mode) {
    case 'bad-json':
      return writeFile(cfgPath, '{"model": ');
    case 'bad-keys':
      (cfg.model as Record<string, unknown>).rope_magic = 3;
      return writeFile(cfgPath, JSON.stringify(cfg, null, 4));
    case 'no-data':
      return rm(join(dir, 'model.onnx.data'));
    case 'no-logits':
      cfg.model.decoder.outputs.logits = 'scores';
      return writeFile(cfgPath, JSON.stringify(cfg, null, 4));
    case 'no-tokenizer':
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) await rm(join(dir, f), { force: true });
      return;
    case 'renamed': {
      // Another file name and data file: ingest must re-save as model.onnx + model.onnx.data.
      const { loadModel, saveModel } = await import('../../../src/onnx/model-file.js');
      const model = await loadModel(join(dir, 'model.onnx'));
      await saveModel(model, join(dir, 'decoder.onnx'), { externalData: 'weights.bin', sizeThreshold: 64 });
      await rm(join(dir, 'model.onnx'));
      await rm(join(dir, 'model.onnx.data'));
      cfg.model.decoder.filename = 'decoder.onnx';
      return writeFile(cfgPath, JSON.stringify(cfg, null, 4));
    }
    case 'two-models':
      await mkdir(join(dir, 'a'), { recursive: true });
      await mkdir(join(dir, 'b'), { recursive: true });
      await writeFile(join(dir, 'a', 'genai_config.json'), JSON.stringify(cfg));
      await writeFile(join(dir, 'b', 'genai_config.json'), JSON.stringify(cfg));
      await rm(cfgPath);
      return;
  }
}

/** tqdm-like output: `\r` redraws on stderr, then a newline. */
async function progress(): Promise<void> {
  for (const pct of [0, 50, 100]) {
    process.stderr.write(`\rLoading checkpoint shards: ${String(pct).padStart(3)}%|${'#'.repeat(pct / 10).padEnd(10)}| ${pct / 50}/2`);
    await new Promise((r) => setTimeout(r, 5));
  }
  process.stderr.write('\n');
}

async function hang(pidFile: string): Promise<never> {
  // Same process group as us (not detached): what a Python tool's worker processes look like.
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await writeFile(pidFile, `${process.pid} ${child.pid}`);
  process.stdout.write('working...\n');
  return new Promise<never>(() => setInterval(() => {}, 1000));
}

// ---------------------------------------------------------------------------------------------------------------
// python -m onnxruntime_genai.models.builder

async function genaiBuilder(a: string[]): Promise<void> {
  const prog = 'builder.py';
  const opts: Record<string, string> = {};
  const extra: Record<string, string> = {};
  const short: Record<string, string> = { '-m': 'model_name', '-i': 'input', '-o': 'output', '-p': 'precision', '-e': 'execution_provider', '-c': 'cache_dir' };
  for (let i = 0; i < a.length; i++) {
    const k = a[i];
    if (k === '--extra_options') {
      let n = 0;
      while (i + 1 < a.length && !a[i + 1].startsWith('-')) {
        const kv = a[++i].split('=');
        extra[kv[0].trim()] = (kv[1] ?? '').trim();
        n++;
      }
      if (!n) usage(prog, 'argument --extra_options: expected at least one argument');
      continue;
    }
    const key = short[k] ?? (k.startsWith('--') ? k.slice(2) : undefined);
    if (!key || !Object.values(short).includes(key)) usage(prog, `unrecognized arguments: ${k}`);
    if (i + 1 >= a.length) usage(prog, `argument ${k}: expected one argument`);
    opts[key] = a[++i];
  }
  for (const req of ['output', 'precision', 'execution_provider']) if (!opts[req]) usage(prog, `the following arguments are required: --${req}`);
  if (!['int4', 'bf16', 'fp16', 'fp32'].includes(opts.precision)) usage(prog, `argument -p/--precision: invalid choice: '${opts.precision}'`);
  if (!['cpu', 'cuda', 'dml', 'webgpu', 'NvTensorRtRtx'].includes(opts.execution_provider)) usage(prog, `argument -e/--execution_provider: invalid choice: '${opts.execution_provider}'`);
  for (const k of ['int4_is_symmetric', 'shared_embeddings', 'exclude_embeds', 'exclude_lm_head']) {
    if (k in extra && !['true', 'false', 'True', 'False', '0', '1'].includes(extra[k])) {
      process.stderr.write(`ValueError: ${k} must be false/False/0 or true/True/1.\n`);
      process.exit(1);
    }
  }
  const input = opts.input ? resolve(opts.input) : '';
  if (!input || !existsSync(join(input, 'config.json'))) {
    process.stderr.write(`OSError: ${opts.model_name ?? input} does not appear to have a file named config.json\n`);
    process.exit(1);
  }
  process.stdout.write(`Extra options: ${JSON.stringify(extra)}\n`);
  const outDir = resolve(opts.output);
  await mkdir(outDir, { recursive: true });
  await mkdir(resolve(opts.cache_dir ?? 'cache_dir'), { recursive: true });
  await build({ checkpoint: input, outDir, precision: opts.precision, ep: opts.execution_provider, extra });
}

// ---------------------------------------------------------------------------------------------------------------
// olive

const EP_SHORT: Record<string, string> = { CPUExecutionProvider: 'cpu', CUDAExecutionProvider: 'cuda', DmlExecutionProvider: 'dml', WebGpuExecutionProvider: 'webgpu' };

function parseFlags(a: string[], known: Record<string, 'value' | 'flag'>, prog: string): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < a.length; i++) {
    const kind = known[a[i]];
    if (!kind) usage(prog, `unrecognized arguments: ${a[i]}`);
    const key = a[i].replace(/^-+/, '');
    if (kind === 'flag') out[key] = true;
    else {
      if (i + 1 >= a.length) usage(prog, `argument ${a[i]}: expected one argument`);
      out[key] = a[++i];
    }
  }
  return out;
}

/** A folder written by `olive quantize` (or any Olive command) names its model in model_config.json. */
function sourceCheckpoint(m: string): string {
  const cfg = join(m, 'model_config.json');
  if (existsSync(cfg)) return (JSON.parse(readFileSync(cfg, 'utf8')) as { config: { model_path: string } }).config.model_path;
  return m;
}

async function olive(a: string[]): Promise<void> {
  const [sub, ...rest] = a;
  const log = (msg: string) => process.stdout.write(`[2025-01-01 00:00:00,000] [INFO] [engine.py:1] ${msg}\n`);
  if (sub === 'run') {
    const f = parseFlags(rest, { '--config': 'value', '--run-config': 'value', '--log_level': 'value', '--tempdir': 'value' }, 'olive run');
    const path = (f.config ?? f['run-config']) as string | undefined;
    if (!path) usage('olive run', 'the following arguments are required: --run-config/--config');
    const config = JSON.parse(await readFile(path, 'utf8')) as {
      input_model: { type: string; model_path: string };
      systems: Record<string, { accelerators: { device: string; execution_providers: string[] }[] }>;
      passes: Record<string, Record<string, unknown>>;
      output_dir: string;
    };
    record({ config });
    const pass = Object.values(config.passes).find((p) => p.type === 'ModelBuilder');
    if (!pass) usage('olive run', 'this fake runs ModelBuilder workflows only');
    const ep = config.systems.local_system.accelerators[0].execution_providers[0];
    log(`Running pass builder:ModelBuilder`);
    const extra: BuildSpec['extra'] = { ...((pass.extra_options as BuildSpec['extra']) ?? {}) };
    for (const [k, v] of Object.entries(pass)) if (k.startsWith('int4_')) extra[k] = v as string;
    await build({ checkpoint: config.input_model.model_path, outDir: join(config.output_dir, 'model'), precision: String(pass.precision), ep: EP_SHORT[ep] ?? 'cpu', extra });
    await writeFile(join(config.output_dir, 'footprints.json'), '{}');
    log(`Saved output model to ${config.output_dir}`);
    return;
  }
  if (sub === 'auto-opt') {
    record();
    const f = parseFlags(
      rest,
      { '-m': 'value', '--model_name_or_path': 'value', '-o': 'value', '--output_path': 'value', '--device': 'value', '--provider': 'value', '--precision': 'value', '--use_model_builder': 'flag', '--log_level': 'value' },
      'olive auto-opt',
    );
    const m = (f.m ?? f.model_name_or_path) as string | undefined;
    const o = (f.o ?? f.output_path) as string | undefined;
    if (!m) usage('olive auto-opt', 'the following arguments are required: -m/--model_name_or_path');
    if (!f.use_model_builder) usage('olive auto-opt', 'this fake only runs --use_model_builder');
    const out = resolve(o ?? 'auto-opt-output');
    log('Running pass model_builder:ModelBuilder');
    await build({ checkpoint: sourceCheckpoint(m), outDir: join(out, 'model'), precision: String(f.precision ?? 'fp32'), ep: EP_SHORT[String(f.provider ?? 'CPUExecutionProvider')] ?? 'cpu', extra: {} });
    process.stdout.write(`Model is saved at ${out}\n`);
    return;
  }
  if (sub === 'quantize') {
    record();
    const f = parseFlags(
      rest,
      { '-m': 'value', '-o': 'value', '--algorithm': 'value', '--precision': 'value', '-d': 'value', '--data_name': 'value', '--log_level': 'value', '--implementation': 'value' },
      'olive quantize',
    );
    if (!['awq', 'gptq', 'hqq', 'rtn', 'spinquant', 'quarot'].includes(String(f.algorithm ?? 'rtn'))) usage('olive quantize', `argument --algorithm: invalid choice: '${f.algorithm}'`);
    const out = resolve(String(f.o ?? 'quantized-model'));
    await mkdir(out, { recursive: true });
    await progress();
    // The real command writes a quantized Hugging Face model; the fake points at the original one.
    await writeFile(join(out, 'model_config.json'), JSON.stringify({ type: 'HfModel', config: { model_path: resolve(String(f.m)), algorithm: f.algorithm } }));
    process.stdout.write(`Model is saved at ${out}\n`);
    return;
  }
  record();
  usage('olive', `argument command: invalid choice: '${sub}'`);
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (name === 'olive') return olive(args);
  if (name === 'python3' || name === 'python') {
    if (args[0] === '-c' && (args[1] ?? '').includes('PHI_FORGE_PROBE')) probe();
    record();
    if (args[0] === '--version') {
      process.stdout.write(`Python ${env.FAKE_PYTHON_VERSION ?? '3.11.7'}\n`);
      return;
    }
    if (args[0] === '-m' && args[1] === 'onnxruntime_genai.models.builder') return genaiBuilder(args.slice(2));
    process.stderr.write(`fake ${name}: unsupported invocation ${JSON.stringify(args)}\n`);
    process.exit(2);
  }
  process.stderr.write(`fake tool: unknown name ${name}\n`);
  process.exit(2);
}

main().catch((e: unknown) => {
  process.stderr.write(`fake ${name} crashed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(3);
});
