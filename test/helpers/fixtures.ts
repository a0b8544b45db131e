// The shared read-only fixtures (../shared/fixtures): a path when present; a missing fixture is undefined on a
// developer machine (the test skips) and an error under CI=true (the test fails instead of skipping).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function sharedFixture(rel: string): string | undefined {
  const p = fileURLToPath(new URL(`../../../shared/fixtures/${rel}`, import.meta.url));
  if (existsSync(p)) return p;
  if (process.env.CI === 'true') throw new Error(`shared fixture missing: ${p} (CI=true requires ../shared/fixtures)`);
  return undefined;
}
