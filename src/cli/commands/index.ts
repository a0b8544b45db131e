// Every CLI command, in the order --help lists them. One file per command.
import type { Command } from '../command.js';
import { buildCommand } from './build.js';
import { convertCommand } from './convert.js';
import { convertLlama2cCommand } from './convert-llama2c.js';
import { synthCommand } from './synth.js';
import { quantizeCommand } from './quantize.js';
import { evalCommand } from './eval.js';
import { generateCommand } from './generate.js';
import { compareCommand } from './compare.js';
import { releaseCommand } from './release.js';
import { verifyCommand } from './verify.js';
import { inspectCommand } from './inspect.js';

export const commands: readonly Command[] = [
  buildCommand,
  convertCommand,
  convertLlama2cCommand,
  synthCommand,
  quantizeCommand,
  evalCommand,
  generateCommand,
  compareCommand,
  releaseCommand,
  verifyCommand,
  inspectCommand,
];
