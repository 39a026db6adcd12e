/**
 * After `vitest run --coverage`: line coverage per src folder (and the files at src/'s top level)
 * from coverage/coverage-summary.json, as the markdown table docs/development.md shows.
 */
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
type Counts = { total: number; covered: number };
const summary = JSON.parse(readFileSync(join(ROOT, 'coverage/coverage-summary.json'), 'utf8')) as Record<string, { lines: Counts }>;

const folders = new Map<string, Counts>();
for (const [file, s] of Object.entries(summary)) {
  if (file === 'total') continue;
  const parts = relative(ROOT, file).split('/');
  const folder = parts.length > 2 ? `${parts.slice(0, 2).join('/')}/` : `${parts[0]}/*.ts`;
  const f = folders.get(folder) ?? { total: 0, covered: 0 };
  f.total += s.lines.total;
  f.covered += s.lines.covered;
  folders.set(folder, f);
}
const pct = (c: Counts) => (c.total ? (100 * c.covered) / c.total : 100).toFixed(1);
const lines = ['| folder | lines | covered |', '| --- | ---: | ---: |'];
for (const [folder, c] of [...folders].sort(([a], [b]) => a.localeCompare(b))) lines.push(`| \`${folder}\` | ${c.total} | ${pct(c)} % |`);
lines.push(`| all of src/ | ${summary.total.lines.total} | ${pct(summary.total.lines)} % |`);
process.stdout.write(`${lines.join('\n')}\n`);
