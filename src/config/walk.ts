import type { z } from 'zod';

/** Walks a zod schema by config path, looking through defaults/optionals; used for key suggestions and env mapping. */

/** The part of a zod 4 schema's internals this walks: the kind, and the children of wrappers, objects and records. */
type Node = { _zod: { def: { type: string; innerType?: Node; shape?: Record<string, Node>; valueType?: Node } } };
const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable']);

function unwrap(node: Node | undefined): Node | undefined {
  let cur = node;
  while (cur && WRAPPERS.has(cur._zod.def.type)) cur = cur._zod.def.innerType;
  return cur;
}

export function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): Node | undefined {
  let cur = unwrap(schema as unknown as Node);
  for (const p of path) {
    const def = cur?._zod.def;
    if (def?.type === 'object') cur = unwrap(def.shape?.[p as string]);
    else if (def?.type === 'record') cur = unwrap(def.valueType);
    else return undefined;
  }
  return cur;
}

/** The keys an object schema accepts at `path`; [] when it is not an object. */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const def = schemaAt(schema, path)?._zod.def;
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

export function isRecordAt(schema: z.ZodType, path: readonly PropertyKey[]): boolean {
  return schemaAt(schema, path)?._zod.def.type === 'record';
}
