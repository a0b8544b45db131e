// Compiles src/quant/formats/uniform-kernels.wat to uniform-kernels.wasm with wabt (SIMD on): run after editing the .wat.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import wabtInit from 'wabt';

export const KERNELS_WAT = fileURLToPath(new URL('../src/quant/formats/uniform-kernels.wat', import.meta.url));
export const KERNELS_WASM = fileURLToPath(new URL('../src/quant/formats/uniform-kernels.wasm', import.meta.url));

/** The binary of `text`: validated, no names section, canonical LEB128 sizes, so the same text gives the same bytes. */
export async function compileWat(text: string, filename = 'uniform-kernels.wat'): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const module = wabt.parseWat(filename, text, { simd: true });
  try {
    module.resolveNames();
    module.validate();
    return module.toBinary({ canonicalize_lebs: true, write_debug_names: false }).buffer;
  } finally {
    module.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bytes = await compileWat(readFileSync(KERNELS_WAT, 'utf8'));
  writeFileSync(KERNELS_WASM, bytes);
  console.log(`wrote ${KERNELS_WASM} (${bytes.length} bytes)`);
}
