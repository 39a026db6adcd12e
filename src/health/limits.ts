import type { Socket } from 'node:net';

/**
 * What the HTTP endpoint allows at once (`http.limits`): a flood of connections or slow bodies
 * must not use up the process's file descriptors (the cameras and the journal need them) nor keep
 * a probe from /healthz.
 */
export interface HttpLimits {
  /** Open connections in all. */
  connections: number;
  /** Open connections from one client address. */
  perClient: number;
  /** A request's headers and body must have arrived within this (408 after). */
  bodyTimeoutSec: number;
  /** `POST /infer` requests at once, from the first byte of the body to the answer (503 BUSY beyond). */
  inferConcurrent: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = { connections: 128, perClient: 16, bodyTimeoutSec: 30, inferConcurrent: 1 };

const REFUSED_BODY = '{"error":"too many connections","code":"BUSY"}\n';
const REFUSED = [
  'HTTP/1.1 503 Service Unavailable',
  'Connection: close',
  'Content-Type: application/json',
  'Retry-After: 1',
  `Content-Length: ${REFUSED_BODY.length}`,
  '',
  REFUSED_BODY,
].join('\r\n');

const LOCAL = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Counts open connections in all and per client address; refuses (503, closed) beyond either. */
export class ConnectionGuard {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly limits: Pick<HttpLimits, 'connections' | 'perClient'>,
    private readonly refused: (socket: Socket, reason: string) => void,
  ) {}

  admit(socket: Socket): void {
    const client = socket.remoteAddress ?? '?';
    const mine = this.perClient.get(client) ?? 0;
    // The device itself (a prober, systemd, an SSH tunnel) is held only to perClient: connections
    // from the LAN, however many addresses they come from, cannot keep it out.
    const full = this.total >= this.limits.connections && !LOCAL.has(client);
    const reason = full ? 'too many connections' : mine >= this.limits.perClient ? 'too many connections from this client' : undefined;
    if (reason) {
      this.refused(socket, reason);
      // Errors on a socket we are closing anyway (a reset by the client) are not ours to report.
      socket.on('error', () => undefined);
      socket.end(REFUSED);
      socket.destroySoon();
      return;
    }
    this.total++;
    this.perClient.set(client, mine + 1);
    socket.once('close', () => {
      this.total--;
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n > 0) this.perClient.set(client, n);
      else this.perClient.delete(client);
    });
  }
}
