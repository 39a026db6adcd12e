import { StringDecoder } from 'node:string_decoder';
import { StreamClient } from './http-stream.js';

/** One Server-Sent Event as a browser's EventSource would dispatch it (fields per the SSE spec). */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** A real HTTP client of an SSE endpoint that parses the stream as EventSource does. */
export class SseClient extends StreamClient {
  readonly events: SseEvent[] = [];
  private buf = '';
  // A UTF-8 character split across two chunks is joined, as res.setEncoding('utf8') would.
  private readonly text = new StringDecoder('utf8');

  static open(port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return StreamClient.connect(new SseClient(), port, path, headers);
  }

  /** Events other than heartbeats. */
  get messages(): SseEvent[] {
    return this.events.filter((e) => e.event !== 'heartbeat');
  }

  protected feed(chunk: Buffer): void {
    this.buf += this.text.write(chunk);
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
  }

  protected progress(): string {
    return `with ${this.events.length} events`;
  }

  /** Resolves once `pred` holds (checked as each event arrives); fails if the stream ends first. */
  until(pred: (c: SseClient) => boolean): Promise<void> {
    return this.when(() => pred(this));
  }
}
