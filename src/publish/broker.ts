import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import { DaemonError } from '../errors.js';

/**
 * The embedded broker (aedes): the zero-config default, so the demo runs with nothing installed.
 * It speaks MQTT 3.1.1 reliably; production points mqtt.url at Mosquitto or a cluster.
 */
export class EmbeddedBroker {
  private broker: Aedes | undefined;
  private server: Server | undefined;
  readonly host: string;
  readonly port: number;

  constructor(opts: { host: string; port: number }) {
    this.host = opts.host;
    this.port = opts.port;
  }

  get url(): string {
    return `mqtt://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.port, this.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await new Promise<void>((r) => broker.close(() => r()));
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'EADDRINUSE'
          ? `port ${this.port} on ${this.host} is already in use (another MQTT broker?); set mqtt.embedded.port, or point mqtt.url at that broker`
          : code === 'EACCES'
            ? `no permission to listen on ${this.host}:${this.port}`
            : `cannot listen on ${this.host}:${this.port}: ${String(err)}`;
      throw new DaemonError('BROKER_LISTEN', `mqtt.embedded.port: ${why}`, { cause: err });
    }
    this.broker = broker;
    this.server = server;
  }

  async stop(): Promise<void> {
    const { broker, server } = this;
    this.broker = undefined;
    this.server = undefined;
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
