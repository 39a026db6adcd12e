/**
 * Finds and loads our native addons (native/build/Release/*.node, built by `npm install` through
 * scripts/build-native.mjs). Knows nothing about what an addon does: the typed wrappers live with
 * their users (src/capture/native.ts for edge_capture, src/health/sdnotify.ts for edge_notify,
 * src/inference/tensorize.ts for edge_tensor).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';

export type AddonName = 'edge_capture' | 'edge_notify' | 'edge_tensor';

/** A loaded addon, or why it is unavailable (not built, or does not load). */
export type Loaded<T> = { ok: true; addon: T } | { ok: false; reason: string };

/** Where `npm install` (scripts/build-native.mjs) puts the addons. */
export function addonPath(name: AddonName): string {
  return join(packageRoot, 'native', 'build', 'Release', `${name}.node`);
}

/** Loads an addon (no caching: callers keep what they loaded). */
export function loadAddon<T>(name: AddonName): Loaded<T> {
  const path = addonPath(name);
  if (!existsSync(path)) return { ok: false, reason: `${path} is not built` };
  try {
    return { ok: true, addon: createRequire(import.meta.url)(path) as T };
  } catch (err) {
    // e.g. "libgstapp-1.0.so.0: cannot open shared object file" when the runtime libraries went away.
    return { ok: false, reason: `${path} does not load: ${err instanceof Error ? err.message : String(err)}` };
  }
}
