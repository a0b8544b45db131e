// The layers of src/ and pipelines/ (docs/architecture.md draws them): a folder imports only folders on lower layers,
// never one on its own layer or above. This test keeps the picture true: an import against the direction fails here, naming it.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const SRC = join(ROOT, 'src');
const PIPELINES = join(ROOT, 'pipelines');

/** Top to bottom; folders on one line are one layer (they do not import each other). */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['pipelines'],
  ['stages'],
  ['compare'],
  ['external', 'package'],
  ['eval'],
  ['runtime', 'quant'],
  ['arch'],
  ['graph'],
  ['genai'],
  ['recipes'],
  ['target', 'tokenizer', 'hub', 'checkpoint'],
  ['ort', 'onnx'],
  ['util', 'vocabulary'],
];

const layerOf = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The layer folder a path lies in: a top-level folder of src/ (`vocabulary` for src/vocabulary.ts), or `pipelines`. */
function folderOf(path: string): string | undefined {
  if (path.startsWith(PIPELINES + '/')) return 'pipelines';
  if (!path.startsWith(SRC + '/')) return undefined;
  return relative(SRC, path).split('/')[0].replace(/\.(ts|js)$/, '');
}

describe('layers of src/', () => {
  it('every top-level folder of src/ has a layer', () => {
    const folders = readdirSync(SRC).map((n) => n.replace(/\.(ts|proto)$/, ''));
    expect(folders.filter((f) => !layerOf.has(f))).toEqual([]);
  });

  it('imports point down the layers only', () => {
    const wrong: string[] = [];
    for (const file of [...sourceFiles(SRC), ...sourceFiles(PIPELINES)]) {
      const from = folderOf(file)!;
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = normalize(join(dirname(file), m[1]));
        const to = folderOf(target);
        if (to === undefined) {
          wrong.push(`${relative(ROOT, file)} imports ${m[1]}, outside src/ and pipelines/`);
          continue;
        }
        if (to !== from && !(layerOf.get(to)! > layerOf.get(from)!)) wrong.push(`${relative(ROOT, file)} (${from}) imports ${to}: ${m[1]}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
