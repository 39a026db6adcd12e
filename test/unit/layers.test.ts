import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layerOf, layerRules, readLayers } from '../../scripts/layers.mjs';

const ROOT = join(import.meta.dirname, '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [relative(ROOT, join(dir, e.name))] : [],
  );
}

/** Whether the generated rules forbid an import from one file to another. */
const forbidden = (from: string, to: string) =>
  layerRules(readLayers()).some((r) => new RegExp(r.from.path).test(from) && new RegExp(r.to.path).test(to));

describe('the layer table in docs/architecture.md (the source of the dependency-cruiser rules)', () => {
  it('puts every file under src/ in exactly one layer', () => {
    const layers = readLayers();
    const unplaced = sourceFiles(join(ROOT, 'src')).filter((f) => layerOf(layers, f) === undefined);
    expect(unplaced).toEqual([]);
  });

  it('names only modules that exist', () => {
    const missing = readLayers()
      .flatMap((l) => l.modules)
      .filter((m) => !existsSync(join(ROOT, m)));
    expect(missing).toEqual([]);
  });

  it('forbids imports up the table and allows them down it', () => {
    expect(forbidden('src/capture/frame.ts', 'src/health/page.ts')).toBe(true);
    expect(forbidden('src/config/schema.ts', 'src/capture/uri.ts')).toBe(true);
    expect(forbidden('src/inference/engine.ts', 'src/app.ts')).toBe(true);
    expect(forbidden('src/health/page.ts', 'src/capture/frame.ts')).toBe(false);
    expect(forbidden('src/app.ts', 'src/health/page.ts')).toBe(false);
    expect(forbidden('src/inference/engine.ts', 'src/inference/crop.ts')).toBe(false);
    // A folder row covers what is in it, a file row only that file (src/app.ts, not src/app.tsx).
    expect(forbidden('src/health/page.ts', 'src/app.tsx')).toBe(false);
  });

  it('reads the rows in order and refuses a table that skips a layer', () => {
    const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
    expect(readLayers(doc).map((l) => l.layer)).toEqual(readLayers(doc).map((_, i) => i + 1));
    const skipped = doc.replace(/^\| 3 \|/m, '| 4 |');
    expect(() => readLayers(skipped)).toThrow(/layer 4 is row 3/);
  });
});
