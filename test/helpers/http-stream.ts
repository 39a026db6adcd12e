import { type ClientRequest, type IncomingMessage, request } from 'node:http';

/**
 * A real HTTP client of an endless response (SSE, MJPEG) that lets a test wait for what has
 * arrived, checked as each chunk comes (no polling, no sleeps). A subclass parses the body as it
 * streams in (`feed`); a response other than 200 is kept whole in `body`.
 */
export abstract class StreamClient {
  status = 0;
  headers: IncomingMessage['headers'] = {};
  body = '';
  ended = false;
  private waiters: { pred: () => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  private req: ClientRequest | undefined;
  private res: IncomingMessage | undefined;

  /** Parses the next chunk of a 200 response. */
  protected abstract feed(chunk: Buffer): void;
  /** What has arrived, for a failure's message. */
  protected abstract progress(): string;

  /** Sends the GET; resolves with the client once the response's head has come. */
  protected static connect<C extends StreamClient>(c: C, port: number, path: string, headers: Record<string, string>): Promise<C> {
    return new Promise((resolve, reject) => {
      c.req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
        c.res = res;
        c.status = res.statusCode ?? 0;
        c.headers = res.headers;
        res.on('data', (d: Buffer) => {
          if (c.status !== 200) c.body += d.toString();
          else c.feed(d);
          c.check();
        });
        res.on('end', () => c.end());
        res.on('error', () => c.end());
        resolve(c);
      });
      c.req.on('error', (e) => (c.res ? c.end() : reject(e)));
      c.req.end();
    });
  }

  private end(): void {
    this.ended = true;
    this.check();
    for (const w of this.waiters.splice(0)) w.reject(new Error(`stream ended ${this.progress()}`));
  }

  private check(): void {
    const still = [];
    for (const w of this.waiters) {
      if (w.pred()) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Resolves once `pred` holds (checked as each chunk arrives); fails if the stream ends first. */
  protected when(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    if (this.ended) return Promise.reject(new Error(`stream ended ${this.progress()}`));
    return new Promise((resolve, reject) => this.waiters.push({ pred, resolve, reject }));
  }

  /** Resolves when the server ends or drops the stream. */
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
