import { StreamClient } from './http-stream.js';

/** A real HTTP client of a multipart/x-mixed-replace stream (what an <img> reads): each part's JPEG as it arrives. */
export class MjpegClient extends StreamClient {
  readonly frames: Buffer[] = [];
  private buf = Buffer.alloc(0);

  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<MjpegClient> {
    return StreamClient.connect(new MjpegClient(), port, path, headers);
  }

  private get boundary(): string {
    return /boundary=([^;\s]+)/.exec(String(this.headers['content-type']))?.[1] ?? '';
  }

  protected feed(d: Buffer): void {
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
  }

  protected progress(): string {
    return `after ${this.frames.length} frames`;
  }

  /** Resolves once `n` frames have arrived. */
  frameCount(n: number): Promise<void> {
    return this.when(() => this.frames.length >= n);
  }
}
