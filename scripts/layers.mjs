// The layer table of docs/architecture.md ("The layering rule") as data, and the dependency-cruiser
// rules made from it: the docs are the one source; .dependency-cruiser.mjs and a unit test read them.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DOC = 'docs/architecture.md';

/** The rows of the layer table: `{ layer, modules }`, lowest layer first; modules are paths ("src/x/" is a folder). */
export function readLayers(markdown = readFileSync(join(ROOT, DOC), 'utf8')) {
  const section = markdown.slice(markdown.indexOf('## The layering rule'));
  const rows = [];
  for (const line of section.split('\n')) {
    const m = /^\| (\d+) \| (.+?) \|/.exec(line);
    if (!m) continue;
    const modules = [...m[2].matchAll(/`([^`]+)`/g)].map((x) => x[1]);
    if (!modules.length) throw new Error(`${DOC}: layer ${m[1]} names no modules`);
    rows.push({ layer: Number(m[1]), modules });
  }
  if (!rows.length) throw new Error(`${DOC}: no layer table under "## The layering rule"`);
  rows.forEach((r, i) => {
    if (r.layer !== i + 1) throw new Error(`${DOC}: layer ${r.layer} is row ${i + 1}; number the rows 1, 2, 3...`);
  });
  return rows;
}

const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A dependency-cruiser path pattern matching the modules: a folder with everything in it, a file exactly. */
export const pattern = (modules) => `^(${modules.map((m) => (m.endsWith('/') ? escapeRegex(m) : `${escapeRegex(m)}$`)).join('|')})`;

/** The layer a repository path belongs to, or undefined. */
export function layerOf(layers, path) {
  const hits = layers.filter((l) => l.modules.some((m) => (m.endsWith('/') ? path.startsWith(m) : path === m)));
  if (hits.length > 1) throw new Error(`${path} is in layers ${hits.map((l) => l.layer).join(' and ')} of ${DOC}`);
  return hits[0]?.layer;
}

/** dependency-cruiser `forbidden` rules: each layer may import only its own and lower layers. */
export function layerRules(layers) {
  return layers.slice(0, -1).map((l) => ({
    name: `layer-${l.layer}-imports-up`,
    comment: `layer ${l.layer} (${l.modules.join(', ')}) imports a higher layer (${DOC}: lower layers never import higher ones)`,
    severity: 'error',
    from: { path: pattern(l.modules) },
    to: { path: pattern(layers.filter((h) => h.layer > l.layer).flatMap((h) => h.modules)) },
  }));
}
