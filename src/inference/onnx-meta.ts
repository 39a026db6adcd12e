import { fields } from './protobuf.js';

/**
 * The `metadata_props` of an ONNX file (ModelProto field 14: key/value strings), read straight
 * from the protobuf: ONNX Runtime's Node API does not expose them. Ultralytics exports keep
 * `names`, `imgsz`, `stride`, `task` and `kpt_shape` there. Only the top level is walked; the
 * graph (field 7) is skipped by its length, so a large model costs one pass over its bytes.
 */

const utf8 = new TextDecoder();

export function onnxMetadata(model: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, wire, payload] of fields(model)) {
    if (field !== 14 || wire !== 2 || !(payload instanceof Uint8Array)) continue;
    let key = '';
    let value = '';
    for (const [f, w, p] of fields(payload)) {
      if (w !== 2 || !(p instanceof Uint8Array)) continue;
      if (f === 1) key = utf8.decode(p);
      if (f === 2) value = utf8.decode(p);
    }
    if (key) out[key] = value;
  }
  return out;
}

/** Ultralytics' `names`: a Python dict literal, {0: 'person', 1: "driver's seat", ...}. */
export function pythonNames(s: string): string[] | undefined {
  const names: string[] = [];
  for (const m of s.matchAll(/(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g))
    names[Number(m[1])] = (m[2] ?? m[3]).replace(/\\(.)/g, '$1');
  return names.length > 0 && names.every((n) => typeof n === 'string') ? names : undefined;
}

/** `[640, 640]` or `640` -> [h, w]. */
export function pythonInts(s: string | undefined): number[] | undefined {
  if (s === undefined) return undefined;
  const ns = [...s.matchAll(/-?\d+/g)].map((m) => Number(m[0]));
  return ns.length ? ns : undefined;
}
