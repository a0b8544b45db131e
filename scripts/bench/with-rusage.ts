// Runs one pipeline command in this process and, when the process exits, writes its resource usage (peak RSS, CPU
// time, file-system I/O; process.resourceUsage(), worker threads included) as JSON to the file PHI_FORGE_RUSAGE
// names: how benchmarks measure a command's peak memory without an external `time`.
//
//   PHI_FORGE_RUSAGE=/tmp/u.json tsx scripts/bench/with-rusage.ts quantize in.onnx --out out.onnx ...
import { writeFileSync } from 'node:fs';
import { main } from '../../src/cli/main.js';

const file = process.env.PHI_FORGE_RUSAGE;
process.on('exit', () => {
  if (file) writeFileSync(file, JSON.stringify(process.resourceUsage()));
});
process.exitCode = await main(process.argv.slice(2));
