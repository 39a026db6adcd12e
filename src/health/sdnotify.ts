import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DaemonError } from '../errors.js';
import { packageRoot } from '../paths.js';

/**
 * sd_notify(3) through the native edge_notify addon: one AF_UNIX datagram to $NOTIFY_SOCKET
 * (a filesystem path, or '@name' for the abstract namespace). Without $NOTIFY_SOCKET it does
 * nothing, as libsystemd does.
 */

interface NotifyAddon {
  notify(socketPath: string, state: string): number;
  strerror(err: number): string;
}

export const NOTIFY_ADDON_PATH = join(packageRoot, 'native', 'build', 'Release', 'edge_notify.node');

let addon: NotifyAddon | undefined;
function loadAddon(): NotifyAddon {
  if (addon) return addon;
  if (!existsSync(NOTIFY_ADDON_PATH)) {
    throw new DaemonError('NOTIFY_ADDON', `the native addon ${NOTIFY_ADDON_PATH} is not built (node scripts/build-native.mjs); systemd notifications are off`);
  }
  addon = createRequire(import.meta.url)(NOTIFY_ADDON_PATH) as NotifyAddon;
  return addon;
}

/** sun_path is 108 bytes including the terminating NUL. */
const SUN_PATH_MAX = 107;

/** Checks $NOTIFY_SOCKET the way libsystemd does: an absolute path or '@abstract'. */
export function notifySocketProblem(socket: string): string | undefined {
  if (!socket.startsWith('/') && !socket.startsWith('@')) return `NOTIFY_SOCKET must be an absolute path or start with "@" (got ${JSON.stringify(socket)})`;
  if (Buffer.byteLength(socket) > SUN_PATH_MAX || socket.length < 2) return `NOTIFY_SOCKET must be 2-${SUN_PATH_MAX} bytes (got ${Buffer.byteLength(socket)})`;
  return undefined;
}

/**
 * Sends one notification ("READY=1", "WATCHDOG=1", "STATUS=..." lines joined by '\n').
 * Returns false when there is no $NOTIFY_SOCKET; throws a DaemonError when sending failed.
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return false;
  const problem = notifySocketProblem(socket);
  if (problem) throw new DaemonError('NOTIFY_SOCKET', problem);
  const a = loadAddon();
  const err = a.notify(socket, state);
  if (err !== 0) throw new DaemonError('NOTIFY_SEND', `sd_notify to ${socket} failed: ${a.strerror(err)} (errno ${err})`);
  return true;
}
