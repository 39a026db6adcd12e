/**
 * privacy.includeCrops: local. A message whose crops and heatmaps may be shown on this device but
 * must never leave it is journaled (and so published over MQTT, and kept in the history) without
 * them; its full payload is kept here, in memory only, under the message's journal position, for
 * the loopback surfaces (GET /events to a local client, the kiosk page) to send instead. Bounded in
 * entries and bytes: the oldest go first, and a client replaying from further back gets the
 * journaled payload (no crops) for those.
 */

export interface LocalCopiesOptions {
  /** Payloads kept (default 256). */
  maxEntries?: number;
  /** Their total size in UTF-16 code units, roughly bytes of base64 (default 32 MiB). */
  maxBytes?: number;
}

export class LocalCopies {
  private readonly map = new Map<number, string>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  /** Copies dropped to stay in bounds. */
  evicted = 0;

  constructor(opts: LocalCopiesOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 256;
    this.maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
  }

  /** Keeps the full payload of the message journaled at `seq`. */
  put(seq: number, payload: string): void {
    if (payload.length > this.maxBytes) return;
    this.remove(seq);
    this.map.set(seq, payload);
    this.bytes += payload.length;
    // Journal positions only grow: the Map's insertion order is oldest first.
    for (const [old] of this.map) {
      if (this.map.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.remove(old);
      this.evicted++;
    }
  }

  /** The full payload of the message at `seq`, if it is still kept. */
  get(seq: number): string | undefined {
    return this.map.get(seq);
  }

  /** What a client is sent for the journaled message at `seq`: the local copy for a loopback client, else the journaled payload. */
  payloadFor(seq: number, journaled: string, loopback: boolean): string {
    return (loopback && this.map.get(seq)) || journaled;
  }

  /** The kept copies, oldest first. */
  entries(): IterableIterator<[number, string]> {
    return this.map.entries();
  }

  get size(): number {
    return this.map.size;
  }

  private remove(seq: number): void {
    const p = this.map.get(seq);
    if (p === undefined) return;
    this.bytes -= p.length;
    this.map.delete(seq);
  }
}

/** Whether a socket's remote address is this machine (the only clients that get local copies). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a);
}
