import { type ClientRequest, type IncomingMessage, request } from 'node:http';

/**
 * A real HTTP client of a multipart/x-mixed-replace stream (what an <img> reads): collects each
 * part's JPEG as it arrives and lets a test wait for a number of them (no polling, no sleeps).
 */
export class MjpegClient {
  readonly frames: Buffer[] = [];
  status = 0;
  headers: IncomingMessage['headers'] = {};
  body = '';
  ended = false;
  private buf = Buffer.alloc(0);
  private boundary = '';
  private waiters: { pred: () => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  private req: ClientRequest | undefined;
  private res: IncomingMessage | undefined;

  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<MjpegClient> {
    const c = new MjpegClient();
    return new Promise((resolve, reject) => {
      c.req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
        c.res = res;
        c.status = res.statusCode ?? 0;
        c.headers = res.headers;
        c.boundary = /boundary=([^;\s]+)/.exec(String(res.headers['content-type']))?.[1] ?? '';
        res.on('data', (d: Buffer) => c.feed(d));
        res.on('end', () => c.end());
        res.on('error', () => c.end());
        resolve(c);
      });
      c.req.on('error', (e) => (c.res ? c.end() : reject(e)));
      c.req.end();
    });
  }

  private feed(d: Buffer): void {
    if (this.status !== 200) {
      this.body += d.toString();
      return;
    }
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const start = this.buf.indexOf(`--${this.boundary}\r\n`);
      if (start < 0) break;
      const headEnd = this.buf.indexOf('\r\n\r\n', start);
      if (headEnd < 0) break;
      const head = this.buf.subarray(start, headEnd).toString();
      const len = Number(/Content-Length: (\d+)/i.exec(head)?.[1]);
      if (!Number.isFinite(len)) throw new Error(`a part without Content-Length: ${head}`);
      const bodyStart = headEnd + 4;
      if (this.buf.length < bodyStart + len + 2) break;
      this.frames.push(Buffer.from(this.buf.subarray(bodyStart, bodyStart + len)));
      this.buf = this.buf.subarray(bodyStart + len + 2);
    }
    this.check();
  }

  private end(): void {
    this.ended = true;
    this.check();
    for (const w of this.waiters.splice(0)) w.reject(new Error(`stream ended after ${this.frames.length} frames`));
  }

  private check(): void {
    const still = [];
    for (const w of this.waiters) {
      if (w.pred()) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves once `n` frames have arrived. */
  frameCount(n: number): Promise<void> {
    if (this.frames.length >= n) return Promise.resolve();
    if (this.ended) return Promise.reject(new Error(`stream ended after ${this.frames.length} frames`));
    return new Promise((resolve, reject) => this.waiters.push({ pred: () => this.frames.length >= n, resolve, reject }));
  }

  /** Resolves when the response ends. */
  closed(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pred: () => false, resolve: () => undefined, reject: () => resolve() }));
  }

  /** Stops reading (a stalled viewer). */
  pause(): void {
    this.res?.pause();
  }

  close(): void {
    this.res?.destroy();
    this.req?.destroy();
  }
}
