import type { z } from 'zod';
import { keysAt } from './walk.js';

/** Turns zod issues into `path.to.key: what is wrong (got X)` lines, one per problem. */

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

export function showValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  // JSON would print null for these: say what the file said (YAML's .inf/.nan, or a literal past the double range).
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf';
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

/** Levenshtein distance, for "did you mean" on unknown keys. */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  // Only suggest when the guess is plausibly a typo, not any key at all.
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function describeIssue(issue: z.core.$ZodIssue, got: unknown, schema: z.ZodType): string {
  switch (issue.code) {
    case 'invalid_type':
      if (got === undefined) return `is required (expected ${issue.expected})`;
      if (typeof got === 'number' && !Number.isFinite(got))
        return `must be a finite number (got ${showValue(got)}; a literal like 1e400 is past the largest number)`;
      return `expected ${issue.expected} (got ${showValue(got)})`;
    case 'too_big': {
      const what = issue.origin === 'string' ? 'be at most' : issue.origin === 'array' ? 'have at most' : 'be <=';
      const unit = issue.origin === 'string' ? ' characters' : issue.origin === 'array' ? ' items' : '';
      return `must ${what} ${String(issue.maximum)}${unit} (got ${showValue(got)})`;
    }
    case 'too_small': {
      if (issue.origin === 'string' && issue.minimum === 1) return `must not be empty (got ${showValue(got)})`;
      const what =
        issue.origin === 'string' ? 'be at least' : issue.origin === 'array' ? 'have at least' : issue.inclusive ? 'be >=' : 'be >';
      const unit = issue.origin === 'string' ? ' characters' : issue.origin === 'array' ? ' items' : '';
      return `must ${what} ${String(issue.minimum)}${unit} (got ${showValue(got)})`;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')} (got ${showValue(got)})`;
    case 'invalid_union': {
      if (issue.message && !issue.message.startsWith('Invalid input')) return `${issue.message} (got ${showValue(got)})`;
      // Report the alternatives' expectations in one line rather than zod's nested dump.
      const parts = new Set<string>();
      for (const alt of issue.errors)
        for (const sub of alt) parts.add(describeIssue(sub, valueAt(got, sub.path), schema).replace(/ \(got .*\)$/, ''));
      return `${[...parts].join(', or ')} (got ${showValue(got)})`;
    }
    case 'invalid_format':
      return `${issue.message} (got ${showValue(got)})`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)} (got ${showValue(got)})`;
    case 'invalid_key':
      return `${issue.issues[0]?.message ?? 'invalid key'} (got ${showValue(issue.path[issue.path.length - 1])})`;
    default:
      return `${issue.message} (got ${showValue(got)})`;
  }
}

export interface ProblemContext {
  /** Where each overridden path came from, e.g. "mqtt.url" -> "EDGE_INFERD_MQTT__URL". */
  envSources?: Map<string, string>;
}

export function formatIssues(schema: z.ZodType, input: unknown, issues: readonly z.core.$ZodIssue[], ctx: ProblemContext = {}): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const valid = keysAt(schema, issue.path);
      for (const key of issue.keys) {
        const guess = closest(key, valid);
        const hint = guess ? `did you mean "${guess}"?` : `valid keys: ${valid.join(', ')}`;
        out.push(withSource(`${formatPath([...issue.path, key])}: unknown key (${hint})`, [...issue.path, key], ctx));
      }
      continue;
    }
    const got = valueAt(input, issue.path);
    out.push(withSource(`${formatPath(issue.path)}: ${describeIssue(issue, got, schema)}`, issue.path, ctx));
  }
  return out;
}

function withSource(line: string, path: readonly PropertyKey[], ctx: ProblemContext): string {
  if (!ctx.envSources) return line;
  for (let n = path.length; n > 0; n--) {
    const env = ctx.envSources.get(path.slice(0, n).map(String).join('.'));
    if (env) return `${line} [from ${env}]`;
  }
  return line;
}
