import { isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';

/**
 * YAML text -> plain value, for the config file and model manifests. Every problem comes back as a
 * line naming the file and line: syntax errors, an alias bomb (refused while expanding, by the yaml
 * library's alias budget), and a number too small for a double that would silently read as 0
 * (`1e-400`). Numbers too large (`1e400`, `.inf`) and `.nan` come through as they are, for the
 * schema to refuse by key (config/format.ts names them).
 */

/** Alias expansions allowed per document (the yaml library's default): real files use a handful. */
const MAX_ALIAS_COUNT = 100;

export type YamlResult = { ok: true; value: unknown } | { ok: false; problems: string[] };

export function parseYaml(text: string, file: string): YamlResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  const lineOf = (offset: number | undefined) => (offset === undefined ? '?' : String(lineCounter.linePos(offset).line));
  if (doc.errors.length) {
    return { ok: false, problems: doc.errors.map((e) => `${file}:${e.linePos?.[0]?.line ?? '?'}: YAML: ${e.message.split('\n')[0]}`) };
  }
  const problems: string[] = [];
  let firstAlias: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      firstAlias ??= node.range?.[0];
    },
    Scalar(_key, node, path) {
      if (typeof node.source === 'string' && underflows(node.source, node.value)) {
        problems.push(
          `${keyPath([...path, node])}: ${node.source.trim()} is too close to 0 for a number here (it would ` +
            `read as 0); write 0 or a larger value (${file}:${lineOf(node.range?.[0])})`,
        );
      }
    },
  });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml library's only throw here is its alias budget ("Excessive alias count...").
    const why = err instanceof Error ? err.message : String(err);
    return {
      ok: false,
      problems: [
        `${file}:${lineOf(firstAlias)}: YAML: aliases expand past ${MAX_ALIAS_COUNT} nodes (an alias bomb?), first alias on this line: ${why}`,
      ],
    };
  }
  return problems.length ? { ok: false, problems } : { ok: true, value };
}

/** A number literal with a non-zero digit in its mantissa that reads as 0 (`1e-400`) has underflowed. */
export function underflows(source: string, value: unknown): boolean {
  if (value !== 0) return false;
  const mantissa = source.trim().split(/[eE]/)[0];
  return /^[-+]?(\d|\.\d)/.test(mantissa) && /[1-9]/.test(mantissa);
}

/** `a.b[2].c` from the nodes above a scalar (a key that is not a plain scalar shows as `?`). */
function keyPath(path: readonly unknown[]): string {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const node = path[i];
    if (isPair(node)) {
      const k = isScalar(node.key) ? String(node.key.value) : '?';
      out += out ? `.${k}` : k;
    } else if (isSeq(node)) {
      const child = path[i + 1];
      const idx = node.items.indexOf(child as never);
      if (idx >= 0) out += `[${idx}]`;
    }
  }
  return out || '(root)';
}
