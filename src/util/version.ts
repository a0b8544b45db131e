// The tool's own version (package.json), recorded in stage.json files and package manifests.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const TOOL_NAME = 'phi-forge';
export const TOOL_VERSION: string = pkg.version;
