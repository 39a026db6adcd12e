/**
 * `npm run mutate -- <files...> [--max N] [--lines A-B,C] [--tests a.test.ts,b.test.ts] [--timeout SEC]`:
 * one-line mutation testing. For each source file it makes the one-line changes a developer could
 * plausibly make by mistake (a flipped comparison, a boundary, a constant, a negated condition, &&
 * for ||, a removed call), runs the tests that import the file (directly or through other src
 * modules; only test/unit and test/integration: the process tests run the built dist/, which a
 * mutant does not change) and counts the mutant killed when they fail. At most --max mutants per
 * file (default 12), spread evenly over the candidates (on the lines --lines names, when given: to
 * re-run the survivors of an earlier run). Mutants are written to a scratch copy of the working
 * tree (git's tracked and untracked files; node_modules, dist and native/build linked), never to
 * the tree itself: you can keep editing and testing while it runs, and an interrupted run leaves
 * no mutant behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { invokedDirectly } from './generated-files.js';

const ROOT = resolve(import.meta.dirname, '..');

interface Mutant {
  line: number;
  operator: string;
  before: string;
  after: string;
}

/** Each operator: a name and a function from a line to its mutated versions. */
const OPERATORS: Array<[string, (line: string) => string[]]> = [
  [
    'equality',
    (l) =>
      swaps(l, [
        [' === ', ' !== '],
        [' !== ', ' === '],
      ]),
  ],
  [
    'boundary',
    (l) =>
      swaps(l, [
        [' < ', ' <= '],
        [' <= ', ' < '],
        [' > ', ' >= '],
        [' >= ', ' > '],
      ]),
  ],
  [
    'logical',
    (l) =>
      swaps(l, [
        [' && ', ' || '],
        [' || ', ' && '],
        [' ?? ', ' && '],
      ]),
  ],
  [
    'arithmetic',
    (l) =>
      /['"`]/.test(l)
        ? []
        : swaps(l, [
            [' + ', ' - '],
            [' - ', ' + '],
            [' * ', ' / '],
            [' / ', ' * '],
          ]),
  ],
  [
    'min-max',
    (l) =>
      swaps(l, [
        ['Math.min(', 'Math.max('],
        ['Math.max(', 'Math.min('],
      ]),
  ],
  ['constant', (l) => constants(l)],
  [
    'boolean',
    (l) =>
      swaps(
        l,
        [
          ['true', 'false'],
          ['false', 'true'],
        ],
        true,
      ),
  ],
  ['negate', (l) => negations(l)],
  ['removed-call', (l) => (/^\s*(this\.|await )?[\w.]+\(.*\);\s*$/.test(l) && !/^\s*return\b/.test(l) ? ['// removed by mutate'] : [])],
];

/** Every single replacement of one occurrence of `from` by `to` (word-bounded when asked). */
function swaps(line: string, pairs: Array<[string, string]>, word = false): string[] {
  const out: string[] = [];
  for (const [from, to] of pairs) {
    const re = new RegExp(word ? `\\b${from}\\b` : from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g');
    for (const m of line.matchAll(re)) out.push(line.slice(0, m.index) + to + line.slice((m.index ?? 0) + from.length));
  }
  return out;
}

/** A number (outside strings) moved by one: 0 -> 1, n -> n + 1. */
function constants(line: string): string[] {
  if (/['"`]/.test(line)) return [];
  const out: string[] = [];
  for (const m of line.matchAll(/(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])/g)) {
    const n = Number(m[1]);
    const next = Number.isInteger(n) ? String(n + 1) : String(n * 2);
    out.push(line.slice(0, m.index) + next + line.slice((m.index ?? 0) + m[1].length));
  }
  return out;
}

/** `if (x)` -> `if (!(x))` when the condition is the whole rest of a one-line if. */
function negations(line: string): string[] {
  const m = /^(\s*(?:\} else )?if \()(.*)(\)\s*(?:\{|return\b.*|continue;|break;|throw\b.*|[\w.]+\(.*\);)\s*)$/.exec(line);
  if (!m || !balanced(m[2])) return [];
  return [`${m[1]}!(${m[2]})${m[3]}`];
}

function balanced(s: string): boolean {
  let depth = 0;
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')' && --depth < 0) return false;
  }
  return depth === 0;
}

/** Lines worth mutating: code, not comments, imports, types or log text. */
function mutable(line: string): boolean {
  const t = line.trim();
  return !(
    t === '' ||
    t.startsWith('//') ||
    t.startsWith('*') ||
    t.startsWith('/*') ||
    t.startsWith('import ') ||
    t.startsWith('export type') ||
    t.startsWith('type ') ||
    t.startsWith('interface ') ||
    /\blog\.(debug|info|warn|error)\(/.test(t) ||
    // a property's type (interfaces, class fields without a value): erased, so its mutants are equivalent
    /^(readonly |private |public |protected )*[\w$]+\??: [^=()]*;$/.test(t) ||
    /^readonly |^private readonly \w+:/.test(t)
  );
}

/** An interface or object type's opening line: its body is types only (erased, so every mutant there is equivalent). */
const TYPE_BLOCK = /^(export )?(declare )?(interface \w|type \w[^=]*=\s*\{)/;

export function mutantsOf(source: string): Mutant[] {
  const lines = source.split('\n');
  const out: Mutant[] = [];
  let typeDepth = 0;
  for (const [i, before] of lines.entries()) {
    if (typeDepth > 0 || TYPE_BLOCK.test(before.trim())) {
      typeDepth += (before.match(/\{/g)?.length ?? 0) - (before.match(/\}/g)?.length ?? 0);
      continue;
    }
    if (!mutable(before)) continue;
    for (const [operator, make] of OPERATORS)
      for (const after of make(before)) if (after !== before) out.push({ line: i + 1, operator, before, after });
  }
  return out;
}

/** At most `max` mutants, spread evenly over the list (so every part of the file gets some). */
function spread<T>(all: T[], max: number): T[] {
  if (all.length <= max) return all;
  return Array.from({ length: max }, (_, k) => all[Math.floor((k * all.length) / max)]);
}

// --- which tests cover a file: the static import graph of test/unit and test/integration ---------

const IMPORT = /(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => resolve(dirname(file), m[1]).replace(/\.js$/, '.ts'));
}

function testFiles(): string[] {
  return ['test/unit', 'test/integration'].flatMap((d) =>
    readdirSync(join(ROOT, d))
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => join(ROOT, d, f)),
  );
}

/**
 * The tests nearest the file: those that import it (or import a test helper that does); when none
 * does, those one src import further away, and so on. Going through every import would reach most
 * tests via src/app.ts, and a mutant is judged by its module's own tests.
 */
export function relatedTests(target: string): string[] {
  const abs = resolve(ROOT, target);
  const SRC = join(ROOT, 'src');
  const safeImports = (f: string) => {
    try {
      return importsOf(f);
    } catch {
      return [];
    }
  };
  /** The src files a test reaches through test files only (helpers), then `depth` more src hops. */
  const reached = (test: string, depth: number): Set<string> => {
    const seen = new Set<string>();
    const testSide = [test];
    let frontier: string[] = [];
    for (let f = testSide.pop(); f !== undefined; f = testSide.pop()) {
      for (const d of safeImports(f)) {
        if (d.startsWith(SRC)) frontier.push(d);
        else if (d.startsWith(join(ROOT, 'test')) && !seen.has(d)) {
          seen.add(d);
          testSide.push(d);
        }
      }
    }
    for (let k = 0; k <= depth; k++) {
      const next: string[] = [];
      for (const f of frontier) {
        if (seen.has(f)) continue;
        seen.add(f);
        if (k < depth) next.push(...safeImports(f).filter((d) => d.startsWith(SRC)));
      }
      frontier = next;
    }
    return seen;
  };
  for (let depth = 0; depth <= 3; depth++) {
    const hits = testFiles().filter((t) => reached(t, depth).has(abs));
    if (hits.length) return hits;
  }
  return [];
}

// --- running ---------------------------------------------------------------------------------

/** A copy of the working tree to mutate in (see the file comment); the caller removes it. */
function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mutate-'));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  for (const f of listed.split('\0')) {
    if (!f || !existsSync(join(ROOT, f))) continue; // deleted in the working tree
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(ROOT, f), join(dir, f));
  }
  for (const built of ['node_modules', 'dist', 'native/build'])
    if (existsSync(join(ROOT, built))) symlinkSync(realpathSync(join(ROOT, built)), join(dir, built));
  return dir;
}

/** `--lines 10-40,73`: the line numbers it names. */
function lineFilter(spec: string | undefined): ((line: number) => boolean) | undefined {
  if (!spec) return undefined;
  const ranges = spec.split(',').map((r) => {
    const [a, b = a] = r.split('-').map(Number);
    if (!Number.isInteger(a) || !Number.isInteger(b)) throw new Error(`--lines: ${r} is not a line or a range A-B`);
    return [a, b] as const;
  });
  return (line) => ranges.some(([a, b]) => line >= a && line <= b);
}

/** Runs the tests against the mutant; SKIP_DIST_BUILD: no dist/ build (these tests do not run it). */
function runTests(root: string, tests: string[], timeoutSec: number): Promise<'killed' | 'survived' | 'timeout'> {
  const child = spawn(
    process.execPath,
    [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--bail', '1', '--reporter', 'dot', ...tests],
    {
      cwd: root,
      stdio: 'ignore',
      detached: true,
      env: { ...process.env, CI: 'true', SKIP_DIST_BUILD: '1' },
    },
  );
  running = child.pid;
  return new Promise((done) => {
    const timer = setTimeout(() => {
      stopRunning();
      done('timeout');
    }, timeoutSec * 1000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      running = undefined;
      done(code === 0 ? 'survived' : 'killed');
    });
  });
}

let running: number | undefined;
/** Ends the test run in flight (vitest and its forks: the process group it leads). */
function stopRunning(): void {
  if (running === undefined) return;
  try {
    process.kill(-running, 'SIGKILL');
  } catch {
    // already gone
  }
  running = undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const max = Number(opt('max') ?? 12);
  const timeoutSec = Number(opt('timeout') ?? 300);
  const testsOpt = opt('tests');
  const onLine = lineFilter(opt('lines'));
  const files = args;
  if (!files.length) {
    process.stderr.write(
      'usage: npm run mutate -- <src files...> [--max N] [--lines A-B,C] [--tests a.test.ts,b.test.ts] [--timeout SEC]\n',
    );
    return 2;
  }
  const scratch = scratchCopy();
  const cleanUp = () => rmSync(scratch, { recursive: true, force: true });
  process.on('SIGINT', () => {
    stopRunning();
    cleanUp();
    process.exit(130);
  });
  try {
    return await mutateAll(files, scratch, { max, timeoutSec, testsOpt, onLine });
  } finally {
    cleanUp();
  }
}

async function mutateAll(
  files: string[],
  scratch: string,
  o: { max: number; timeoutSec: number; testsOpt: string | undefined; onLine: ((line: number) => boolean) | undefined },
): Promise<number> {
  const { max, timeoutSec, testsOpt, onLine } = o;
  const totals = { killed: 0, survived: 0, timeout: 0 };
  for (const file of files) {
    const rel = relative(ROOT, resolve(ROOT, file));
    const path = join(scratch, rel);
    const original = readFileSync(path, 'utf8');
    const tests = testsOpt ? testsOpt.split(',').map((t) => resolve(ROOT, t)) : relatedTests(file);
    if (!tests.length) {
      process.stdout.write(`${rel}: no test imports it (give --tests)\n`);
      continue;
    }
    const scratchTests = tests.map((t) => join(scratch, relative(ROOT, t)));
    // Tests that fail unmutated would count every mutant killed.
    const baseline = await runTests(scratch, scratchTests, timeoutSec);
    if (baseline !== 'survived') {
      process.stdout.write(`${rel}: the tests fail (${baseline}) without a mutant: fix them first\n`);
      return 1;
    }
    const all = mutantsOf(original).filter((m) => !onLine || onLine(m.line));
    const chosen = spread(all, max);
    process.stdout.write(`${rel}: ${chosen.length} of ${all.length} mutants, tests: ${tests.map((t) => relative(ROOT, t)).join(' ')}\n`);
    const counts = { killed: 0, survived: 0, timeout: 0 };
    for (const m of chosen) {
      const lines = original.split('\n');
      lines[m.line - 1] = m.after;
      writeFileSync(path, lines.join('\n'));
      let outcome: keyof typeof counts;
      try {
        outcome = await runTests(scratch, scratchTests, timeoutSec);
      } finally {
        writeFileSync(path, original);
      }
      counts[outcome]++;
      const mark = outcome === 'survived' ? 'SURVIVED' : outcome;
      process.stdout.write(`  ${mark.padEnd(8)} ${rel}:${m.line} ${m.operator}: ${m.before.trim()}  ->  ${m.after.trim()}\n`);
    }
    const scored = counts.killed + counts.survived + counts.timeout;
    const score = scored ? Math.round((100 * (counts.killed + counts.timeout)) / scored) : 0;
    process.stdout.write(`${rel}: ${counts.killed} killed, ${counts.timeout} timed out, ${counts.survived} survived: ${score} %\n`);
    totals.killed += counts.killed;
    totals.survived += counts.survived;
    totals.timeout += counts.timeout;
  }
  const n = totals.killed + totals.survived + totals.timeout;
  process.stdout.write(
    `total: ${totals.killed} killed, ${totals.timeout} timed out, ${totals.survived} survived of ${n}: ${n ? Math.round((100 * (n - totals.survived)) / n) : 0} %\n`,
  );
  return 0;
}

if (invokedDirectly(import.meta.url)) process.exitCode = await main();
