/**
 * systemd notification (sd_notify(3)) through our own native addon (native/src/notify.cc): one
 * AF_UNIX datagram to $NOTIFY_SOCKET — a filesystem path, or '@name' for the abstract namespace.
 * Without $NOTIFY_SOCKET (not started by systemd with Type=notify) it does nothing and returns false.
 */
import { constants } from 'node:os';
import { DaemonError } from '../errors.js';
import { type Loaded, loadAddon } from '../native/addon.js';

export interface NotifyAddon {
  /** Sends one datagram; returns 0 or an errno. */
  notify(socketPath: string, state: string): number;
  strerror(errno: number): string;
}

let notifyAddon: Loaded<NotifyAddon> | undefined;
/** The sd_notify addon (edge_notify.node), or why it is unavailable. Cached after the first call. */
export function loadNotifyAddon(): Loaded<NotifyAddon> {
  notifyAddon ??= loadAddon<NotifyAddon>('edge_notify');
  return notifyAddon;
}

export type SdNotifyResult =
  | { sent: true }
  | {
      sent: false;
      /** no-socket: $NOTIFY_SOCKET unset; no-addon: edge_notify.node not built; unsupported-socket:
       * not a path/'@name' (e.g. vsock:) or too long; send-failed: sendto() failed (see errno). */
      reason: 'no-socket' | 'no-addon' | 'unsupported-socket' | 'send-failed';
      errno?: string;
      message: string;
    };

// sockaddr_un.sun_path is 108 bytes on Linux; a path needs its NUL, an abstract name does not.
const SUN_PATH_MAX = 108;

function errnoName(code: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === code) return name;
  return `errno ${code}`;
}

/** Sends `state` (e.g. "READY=1", "WATCHDOG=1", "STATUS=…", "RELOADING=1\nMONOTONIC_USEC=…") and says what happened. */
export function sdNotifyDetailed(state: string, env: NodeJS.ProcessEnv = process.env): SdNotifyResult {
  if (typeof state !== 'string' || state === '' || state.includes('\0')) {
    throw new TypeError('sdNotify: state must be a non-empty string without NUL characters');
  }
  const socketPath = env.NOTIFY_SOCKET;
  if (!socketPath) return { sent: false, reason: 'no-socket', message: 'NOTIFY_SOCKET is not set' };
  const isAbstract = socketPath.startsWith('@');
  const bytes = Buffer.byteLength(socketPath);
  if (
    (!isAbstract && !socketPath.startsWith('/')) ||
    socketPath.includes('\0') ||
    bytes > (isAbstract ? SUN_PATH_MAX : SUN_PATH_MAX - 1) ||
    bytes < 2
  ) {
    return {
      sent: false,
      reason: 'unsupported-socket',
      message: `NOTIFY_SOCKET=${JSON.stringify(socketPath)} is not a usable AF_UNIX socket address`,
    };
  }
  const loaded = loadNotifyAddon();
  if (!loaded.ok) return { sent: false, reason: 'no-addon', message: `sd_notify unavailable: ${loaded.reason}` };
  const err = loaded.addon.notify(socketPath, state);
  if (err === 0) return { sent: true };
  return {
    sent: false,
    reason: 'send-failed',
    errno: errnoName(err),
    message: `sd_notify to ${socketPath} failed: ${loaded.addon.strerror(err)} (${errnoName(err)})`,
  };
}

/** sd_notify: true when the datagram was sent; false without $NOTIFY_SOCKET, without the addon, or on a send error. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return sdNotifyDetailed(state, env).sent;
}

/** The daemon's sd_notify: throws (NOTIFY) when a notification could not be sent; no $NOTIFY_SOCKET is not a failure. */
export function sendNotify(state: string): boolean {
  const r = sdNotifyDetailed(state);
  if (!r.sent && r.reason !== 'no-socket') throw new DaemonError('NOTIFY', r.message);
  return r.sent;
}
