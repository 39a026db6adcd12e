import { type ClientRequest, type IncomingMessage, request } from 'node:http';

/** One Server-Sent Event as a browser's EventSource would dispatch it (fields per the SSE spec). */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * A real HTTP client of an SSE endpoint that parses the stream as EventSource does and lets a test
 * wait for events as they arrive (no polling, no sleeps).
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  status = 0;
  headers: IncomingMessage['headers'] = {};
  body = '';
  ended = false;
  private buf = '';
  private waiters: { pred: () => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  private req: ClientRequest | undefined;
  private res: IncomingMessage | undefined;

  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const c = new SseClient();
    return new Promise((resolve, reject) => {
      c.req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
        c.res = res;
        c.status = res.statusCode ?? 0;
        c.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (d: string) => c.feed(d));
        res.on('end', () => c.end());
        res.on('error', () => c.end());
        resolve(c);
      });
      c.req.on('error', (e) => (c.res ? c.end() : reject(e)));
      c.req.end();
    });
  }

  /** Events other than heartbeats. */
  get messages(): SseEvent[] {
    return this.events.filter((e) => e.event !== 'heartbeat');
  }

  private feed(text: string): void {
    if (this.status !== 200) {
      this.body += text;
      return;
    }
    this.buf += text;
    for (let i = this.buf.indexOf('\n\n'); i >= 0; i = this.buf.indexOf('\n\n')) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const ev: SseEvent = { event: 'message', data: '' };
      const data: string[] = [];
      let any = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') {
          data.push(value);
          any = true;
        } else if (field === 'event') ev.event = value;
        else if (field === 'id') ev.id = value;
      }
      if (!any) continue;
      ev.data = data.join('\n');
      this.events.push(ev);
    }
    this.check();
  }

  private end(): void {
    this.ended = true;
    this.check();
    for (const w of this.waiters.splice(0)) w.reject(new Error(`stream ended with ${this.events.length} events`));
  }

  private check(): void {
    const still = [];
    for (const w of this.waiters) {
      if (w.pred()) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves once `pred` holds (checked as each event arrives); fails if the stream ends first. */
  until(pred: (c: SseClient) => boolean): Promise<void> {
    if (pred(this)) return Promise.resolve();
    if (this.ended) return Promise.reject(new Error(`stream ended with ${this.events.length} events`));
    return new Promise((resolve, reject) => this.waiters.push({ pred: () => pred(this), resolve, reject }));
  }

  /** Resolves when the server ends or drops the stream. */
  closed(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pred: () => false, resolve: () => undefined, reject: () => resolve() }));
  }

  close(): void {
    this.res?.destroy();
    this.req?.destroy();
  }
}
