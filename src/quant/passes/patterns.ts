// Node-name patterns for --exclude and per-node overrides: `/regex/flags` (searched anywhere in the name) or a glob
// matched against the whole name, where `*` matches any run of characters (slashes included) and `?` one character.
import { QuantizationError } from '../../util/errors.js';

export interface NamePattern {
  /** As the user wrote it. */
  readonly source: string;
  test(name: string): boolean;
}

export function compilePattern(source: string): NamePattern {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(source);
  let re: RegExp;
  if (m) {
    try {
      re = new RegExp(m[1], m[2]);
    } catch (e) {
      throw new QuantizationError('QUANT_BAD_PATTERN', `pattern ${source} is not a valid regular expression`, {
        fix: 'write /regex/ with a valid JavaScript regular expression, or a glob like *lm_head*',
        cause: e,
      });
    }
  } else {
    const body = source.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*+/g, '.*').replace(/\?/g, '.');
    re = new RegExp(`^${body}$`, 's');
  }
  return { source, test: (name) => re.test(name) };
}

/** Compiles patterns and remembers which ever matched, so unused ones can be reported. */
export class PatternSet {
  private readonly patterns: NamePattern[];
  private readonly hits = new Set<string>();
  constructor(sources: readonly string[]) {
    this.patterns = sources.map(compilePattern);
  }
  /** The first pattern matching the name, recorded as used. */
  match(name: string): NamePattern | undefined {
    const p = this.patterns.find((x) => x.test(name));
    if (p) this.hits.add(p.source);
    return p;
  }
  unused(): string[] {
    return this.patterns.filter((p) => !this.hits.has(p.source)).map((p) => p.source);
  }
}
