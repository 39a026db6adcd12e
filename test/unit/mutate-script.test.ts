import { describe, expect, it } from 'vitest';
import { mutantsOf } from '../../scripts/mutate.js';

/** `npm run mutate` (scripts/mutate.ts): which lines it mutates and how. */

const mutated = (src: string) => mutantsOf(src).map((m) => `${m.line} ${m.operator}: ${m.after.trim()}`);

describe('mutate: the mutants of a source', () => {
  it('mutates code lines: comparisons, boundaries, logic, arithmetic, constants, booleans, negated ifs, removed calls', () => {
    const src = ['if (a < b) return;', 'const c = x && y;', 'total = n + 1;', 'ok = true;', 'this.run(x);'].join('\n');
    expect(mutated(src)).toEqual([
      '1 boundary: if (a <= b) return;',
      '1 negate: if (!(a < b)) return;',
      '2 logical: const c = x || y;',
      '3 arithmetic: total = n - 1;',
      '3 constant: total = n + 2;',
      '4 boolean: ok = false;',
      '5 removed-call: // removed by mutate',
    ]);
  });

  it('leaves types alone (erased: their mutants would all be equivalent), and comments, imports and log lines', () => {
    const src = [
      "import { x } from './x.js';",
      '// if (a < b) return;',
      'export interface Request {',
      '  explain?: true | (number | null)[];',
      '  nested: { deep: false };',
      '}',
      'type Opts = { retry: true };',
      'interface Short { n: 1 }',
      "log.info({ n: 1 }, 'done');",
      '  private readonly window: number;',
      'const after = 1;',
    ].join('\n');
    expect(mutated(src)).toEqual(['11 constant: const after = 2;']);
  });
});
