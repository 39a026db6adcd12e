/**
 * The calling thread's name as top -H, ps -L and /proc/<pid>/task/<tid>/comm show it (Linux keeps
 * 15 bytes). Node names no thread itself, so everything but GStreamer's threads reads "node";
 * named, a technician and the camera-rate benchmark see where the CPU goes. A thread created
 * afterwards inherits the name (ORT's pool threads, created with the session).
 */
import { loadAddon } from '../native/addon.js';

interface ThreadNameAddon {
  setThreadName(name: string): number;
}

let addon: ThreadNameAddon | null | undefined;

/** Names the calling thread; returns false when it could not (addon not built, not Linux). Never throws for a valid name. */
export function nameThisThread(name: string): boolean {
  if (!/^[\x21-\x7e]{1,15}$/.test(name)) throw new TypeError(`thread name: "${name}" is not 1-15 printable ASCII characters`);
  if (addon === undefined) {
    const loaded = loadAddon<Partial<ThreadNameAddon>>('edge_notify');
    // An addon built before setThreadName existed has no such function: names are a convenience.
    addon = loaded.ok && typeof loaded.addon.setThreadName === 'function' ? (loaded.addon as ThreadNameAddon) : null;
  }
  return addon !== null && addon.setThreadName(name) === 0;
}

/** What the inference worker and ORT's intra-op pool threads are called (the pool's are named before the session creates them). */
export const THREAD_NAMES = { worker: 'edge-infer', ortPool: 'edge-ort', pull: 'edge-pull' } as const;
