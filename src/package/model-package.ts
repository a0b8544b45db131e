// onnxruntime's model-package layout (schema 1.0 of the `model_package` library in microsoft/onnxruntime): several
// target variants of one model in one folder, with a manifest onnxruntime and onnxruntime-genai pick a variant from.
//
//   <model>.ortpackage/
//   ├── manifest.json            {"schema_version": "1.0", "components": {"decoder": "decoder"}, ...}
//   └── decoder/
//       ├── component.json       {"variants": {"cpu": {"ep": "CPUExecutionProvider", "device": "cpu", ...}, ...}}
//       ├── cpu/                 a complete phi-forge package: model.onnx(.data), genai_config.json, tokenizer, manifest.json
//       └── cuda/ ...
//
// Facts this follows (onnxruntime model_package/README.md and manifest_parser.cc; onnxruntime-genai #2227):
// unknown keys are rejected at every level; `components` maps a name to a folder holding component.json;
// `variant_directory` is relative to the component folder and defaults to the variant's name; a variant is chosen
// by `ep` (+ `device`), ties broken by declaration order; onnxruntime-genai loads exactly one component and reads
// the chosen variant folder as a plain model folder, so every variant carries its own complete genai_config.json.
import { constants } from 'node:fs';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { genaiConfigPath, readGenaiConfig } from '../genai/read.js';
import { getTarget, isTargetId, TARGET_IDS, type TargetId } from '../target/index.js';
import { writeDirAtomic } from '../util/atomic-fs.js';
import { PackageError } from '../util/errors.js';
import { relativePathProblem, symlinkOnPath } from '../util/safe-name.js';
import { TOOL_NAME, TOOL_VERSION } from '../util/version.js';
import { packageFilesToCopy, readManifest, type PackageManifest } from './manifest.js';

export const MODEL_PACKAGE_MANIFEST = 'manifest.json';
export const COMPONENT_FILE = 'component.json';
export const MODEL_PACKAGE_SCHEMA_VERSION = '1.0';
/** The one component onnxruntime-genai loads from a package. */
export const DECODER_COMPONENT = 'decoder';
/** Folder-name suffix onnxruntime's tooling (Olive's generate-model-package) gives model packages. */
export const MODEL_PACKAGE_SUFFIX = '.ortpackage';

const MANIFEST_KEYS = new Set(['schema_version', 'package_name', 'package_version', 'description', 'layout', 'components', 'shared_assets', 'additional_metadata']);
const COMPONENT_KEYS = new Set(['component_name', 'variants', 'additional_metadata']);
const VARIANT_KEYS = new Set(['variant_directory', 'ep', 'device', 'compatibility_string', 'executor_info', 'additional_metadata']);
const SUPPORTED_SCHEMA_MAJOR = 1;

export interface ModelPackageInput {
  target: string;
  /** A finished phi-forge package folder (manifest.json + genai_config.json + model files). */
  dir: string;
}

export interface ModelPackageVariant {
  name: string;
  /** Absolute folder of the variant. */
  dir: string;
  ep?: string;
  device?: string;
  /** `executor_info.ort.model_file`, when the variant declares it. */
  modelFile?: string;
}

export interface ModelPackageComponent {
  name: string;
  dir: string;
  variants: ModelPackageVariant[];
}

export interface ModelPackageLayout {
  dir: string;
  schemaVersion: string;
  packageName?: string;
  components: ModelPackageComponent[];
}

/** Writes `outDir` (atomically replaced) holding every package as one variant of the decoder component. */
export async function writeModelPackage(packages: readonly ModelPackageInput[], outDir: string): Promise<ModelPackageLayout> {
  if (packages.length === 0) {
    throw new PackageError('MODEL_PACKAGE_EMPTY', 'a model package needs at least one target package', { file: outDir });
  }
  const loaded: { target: TargetId; dir: string; manifest: PackageManifest; modelFile: string }[] = [];
  for (const p of packages) {
    const manifest = await readManifest(p.dir);
    if (manifest.target !== p.target) {
      throw new PackageError('MODEL_PACKAGE_TARGET_MISMATCH', `the package was built for ${manifest.target}, not ${p.target}`, { file: p.dir });
    }
    if (!isTargetId(p.target)) {
      throw new PackageError('MODEL_PACKAGE_UNKNOWN_TARGET', `unknown target '${p.target}'`, { file: p.dir, fix: `use one of: ${TARGET_IDS.join(', ')}` });
    }
    if (loaded.some((l) => l.target === p.target)) {
      throw new PackageError('MODEL_PACKAGE_DUPLICATE_TARGET', `two packages for target ${p.target}`, { file: p.dir, fix: 'pass one package per target' });
    }
    if (loaded.length && manifest.model !== loaded[0].manifest.model) {
      throw new PackageError('MODEL_PACKAGE_MIXED_MODELS', `packages of different models (${loaded[0].manifest.model} and ${manifest.model}) cannot share one model package`, {
        file: p.dir,
      });
    }
    loaded.push({ target: p.target, dir: p.dir, manifest, modelFile: await decoderFilename(p.dir) });
  }
  // Registry order: cpu precedes mobile, so on the CPU EP the desktop variant wins onnxruntime's declaration-order tie-break.
  loaded.sort((a, b) => TARGET_IDS.indexOf(a.target) - TARGET_IDS.indexOf(b.target));
  const first = loaded[0].manifest;

  const variants: Record<string, unknown> = {};
  for (const l of loaded) {
    const target = getTarget(l.target);
    variants[l.target] = {
      variant_directory: l.target,
      ep: target.executionProvider,
      device: target.device,
      executor_info: { ort: { model_file: l.modelFile } },
      additional_metadata: { target: l.target, precision: l.manifest.precision, quantization: l.manifest.quantization },
    };
  }
  const manifestJson = {
    schema_version: MODEL_PACKAGE_SCHEMA_VERSION,
    package_name: first.model,
    description: `${first.model} for ${loaded.map((l) => l.target).join(', ')} (built by ${TOOL_NAME} from ${first.source.origin}@${first.source.revision})`,
    components: { [DECODER_COMPONENT]: DECODER_COMPONENT },
    additional_metadata: {
      producer: { name: TOOL_NAME, version: TOOL_VERSION },
      recipe: first.recipe,
      source: first.source,
      architecture: first.architecture,
    },
  };
  const componentJson = { component_name: DECODER_COMPONENT, variants };

  await writeDirAtomic(outDir, async (tmp) => {
    await writeFile(join(tmp, MODEL_PACKAGE_MANIFEST), JSON.stringify(manifestJson, null, 2) + '\n');
    const componentDir = join(tmp, DECODER_COMPONENT);
    await mkdir(componentDir, { recursive: true });
    await writeFile(join(componentDir, COMPONENT_FILE), JSON.stringify(componentJson, null, 2) + '\n');
    for (const l of loaded) {
      // The manifest's files (each checked to be a regular file inside the package) and manifest.json, never a
      // folder listing: stray files and links stay out of the model package.
      for (const f of await packageFilesToCopy(l.dir, l.manifest)) {
        const dest = join(componentDir, l.target, f);
        await mkdir(dirname(dest), { recursive: true });
        await copyFile(join(l.dir, f), dest, constants.COPYFILE_FICLONE);
      }
    }
  });
  return readModelPackage(outDir);
}

/** Whether a folder's manifest.json is a model-package manifest (not a phi-forge package manifest). */
export async function isModelPackage(dir: string): Promise<boolean> {
  try {
    const m = JSON.parse(await readFile(join(dir, MODEL_PACKAGE_MANIFEST), 'utf8')) as Record<string, unknown>;
    return typeof m === 'object' && m !== null && 'components' in m && 'schema_version' in m;
  } catch {
    return false;
  }
}

/**
 * Reads a model package the way onnxruntime's parser does (strict keys, schema major 1, portable paths), returning
 * its components and variants with resolved folders. Any deviation is a PackageError naming the file and field.
 */
export async function readModelPackage(dir: string): Promise<ModelPackageLayout> {
  const manifestFile = join(dir, MODEL_PACKAGE_MANIFEST);
  const manifest = await readJsonObject(manifestFile, 'manifest');
  checkKeys(manifest, MANIFEST_KEYS, manifestFile, 'manifest');
  const schemaVersion = parseSchemaVersion(manifest.schema_version, manifestFile);
  if (manifest.layout !== undefined && manifest.layout !== 'portable') {
    throw invalid(manifestFile, `layout "${String(manifest.layout)}" is not supported here; packages are shipped "portable"`);
  }
  const comps = manifest.components;
  if (!isObject(comps) || Object.keys(comps).length === 0) {
    throw invalid(manifestFile, '"components" must be an object with at least one component');
  }
  const components: ModelPackageComponent[] = [];
  for (const [name, value] of Object.entries(comps)) {
    let body: Record<string, unknown>;
    let componentDir: string;
    let where: string;
    if (typeof value === 'string') {
      const p = await pathInside(dir, portablePath(value, manifestFile, `components.${name}`), manifestFile, `components.${name}`);
      const st = await stat(p).catch(() => undefined);
      if (!st) throw invalid(manifestFile, `components.${name}: "${value}" does not exist`);
      const file = st.isDirectory() ? join(p, COMPONENT_FILE) : p;
      componentDir = dirname(file);
      where = file;
      body = await readJsonObject(file, `component '${name}'`);
    } else if (isObject(value)) {
      componentDir = dir;
      where = manifestFile;
      body = value;
    } else {
      throw invalid(manifestFile, `components.${name} must be a path (string) or an inline component (object)`);
    }
    checkKeys(body, COMPONENT_KEYS, where, `component '${name}'`);
    if (!isObject(body.variants)) throw invalid(where, `component '${name}': "variants" must be an object`);
    const variants: ModelPackageVariant[] = [];
    for (const [vname, vbody] of Object.entries(body.variants)) {
      if (!isObject(vbody)) throw invalid(where, `variant '${vname}' must be an object`);
      checkKeys(vbody, VARIANT_KEYS, where, `variant '${vname}'`);
      for (const k of ['variant_directory', 'ep', 'device', 'compatibility_string'] as const) {
        if (vbody[k] !== undefined && typeof vbody[k] !== 'string') throw invalid(where, `variant '${vname}': "${k}" must be a string`);
      }
      const declared = vbody.variant_directory as string | undefined;
      const field = `variant '${vname}'.variant_directory`;
      const vdir = await pathInside(componentDir, portablePath(declared ?? vname, where, field), where, field);
      const exists = (await stat(vdir).catch(() => undefined))?.isDirectory() ?? false;
      if (!exists) throw invalid(where, `variant '${vname}': folder ${declared ?? vname} does not exist`);
      let modelFile: string | undefined;
      const ei = vbody.executor_info;
      if (ei !== undefined) {
        if (!isObject(ei)) throw invalid(where, `variant '${vname}': "executor_info" must be an object`);
        for (const [ns, payload] of Object.entries(ei)) {
          if (typeof payload !== 'string' && !isObject(payload)) {
            throw invalid(where, `variant '${vname}': executor_info.${ns} must be a path (string) or an object`);
          }
        }
        const ort = isObject(ei.ort) ? ei.ort : undefined;
        if (ort && typeof ort.model_file === 'string') modelFile = ort.model_file;
      }
      variants.push({ name: vname, dir: vdir, ep: vbody.ep as string | undefined, device: vbody.device as string | undefined, modelFile });
    }
    components.push({ name, dir: componentDir, variants });
  }
  return {
    dir,
    schemaVersion,
    packageName: typeof manifest.package_name === 'string' ? manifest.package_name : undefined,
    components,
  };
}

async function decoderFilename(pkgDir: string): Promise<string> {
  try {
    return (await readGenaiConfig(pkgDir)).decoder.modelFile;
  } catch (e) {
    throw new PackageError('MODEL_PACKAGE_NO_GENAI_CONFIG', `cannot read genai_config.json (${(e as Error).message})`, {
      file: genaiConfigPath(pkgDir),
      fix: 'every variant needs a complete genai_config.json: rebuild the package',
    });
  }
}

function parseSchemaVersion(v: unknown, file: string): string {
  const s = typeof v === 'number' && Number.isInteger(v) ? `${v}.0` : v;
  const m = typeof s === 'string' ? /^(\d+)(?:\.(\d+))?$/.exec(s) : null;
  if (!m) throw invalid(file, `"schema_version" must be a "<major>.<minor>" string, got ${JSON.stringify(v)}`);
  if (Number(m[1]) !== SUPPORTED_SCHEMA_MAJOR) {
    throw invalid(file, `schema_version ${String(s)} is not supported (major ${SUPPORTED_SCHEMA_MAJOR} only)`);
  }
  return `${m[1]}.${m[2] ?? '0'}`;
}

/**
 * A package-relative POSIX path that stays inside the package (the "portable" layout rule). `./x`, `a/../x` and
 * `.` stay inside and are accepted, normalized first; what remains must pass the one safe-path rule
 * (util/safe-name.ts): no `..`, absolute or drive path, backslash or control character.
 */
function portablePath(p: string, file: string, field: string): string {
  const norm = p === '' ? p : posix.normalize(p).replace(/\/$/, '');
  // `.` (the folder itself) stays inside; the segment rule refuses it only because it is not a file name.
  if (norm === '.') return norm;
  const problem = relativePathProblem(norm);
  if (problem) throw invalid(file, `${field}: ${JSON.stringify(p)} must be a relative path inside the package (${problem})`);
  return norm;
}

/** A portable path under `dir`, refused when a part of it is a symbolic link (which could lead out of the package). */
async function pathInside(dir: string, rel: string, file: string, field: string): Promise<string> {
  const link = await symlinkOnPath(dir, rel);
  if (link) throw invalid(file, `${field}: ${link} is a symbolic link; a portable package holds real folders and files`);
  return join(dir, rel);
}

function checkKeys(obj: Record<string, unknown>, known: ReadonlySet<string>, file: string, what: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) throw invalid(file, `${what}: unknown field '${k}' (onnxruntime rejects it)`);
  }
}

async function readJsonObject(file: string, what: string): Promise<Record<string, unknown>> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    throw invalid(file, `${what}: file is missing`);
  }
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw invalid(file, `${what}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(v)) throw invalid(file, `${what}: expected a JSON object`);
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(file: string, message: string): PackageError {
  return new PackageError('MODEL_PACKAGE_INVALID', message, { file, fix: 'rebuild it with `pnpm pipeline release --model-package`' });
}
