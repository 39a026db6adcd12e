import { createConnection, createServer, type Socket } from 'node:net';
import { freePort } from './ports.js';

/**
 * A TCP proxy on a free loopback port in front of `targetPort`: it records when each connection
 * arrived (performance.now() ms: the reconnect-spread tests count attempts per 100 ms) and can cut
 * the link (every open connection closed, new ones closed at once) and restore it (a network
 * outage between two brokers without stopping either).
 */
export interface TcpProxy {
  port: number;
  url: string;
  /** Arrival time of every connection, performance.now() ms. */
  arrivals: number[];
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const port = await freePort();
  const open = new Set<Socket>();
  const arrivals: number[] = [];
  let isCut = false;
  const server = createServer((down) => {
    arrivals.push(performance.now());
    if (isCut) return void down.destroy();
    const up = createConnection({ port: targetPort, host: '127.0.0.1' });
    open.add(down).add(up);
    const end = () => {
      down.destroy();
      up.destroy();
      open.delete(down);
      open.delete(up);
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const closeAll = () => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    arrivals,
    cut() {
      isCut = true;
      closeAll();
    },
    restore() {
      isCut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        closeAll();
        server.close(() => resolve());
      }),
  };
}

/**
 * Arrivals per `binMs` over [fromMs, toMs]: the busiest bin, the mean over the window, and their
 * ratio (1 = perfectly even; N clients in step = N / mean).
 */
export function spread(
  arrivals: number[],
  fromMs: number,
  toMs: number,
  binMs = 100,
): {
  attempts: number;
  bins: number;
  busiest: number;
  mean: number;
  ratio: number;
  sliding: number;
  slidingRatio: number;
  counts: number[];
} {
  const bins = Math.max(1, Math.ceil((toMs - fromMs) / binMs));
  const counts = new Array<number>(bins).fill(0);
  let attempts = 0;
  for (const t of arrivals) {
    if (t < fromMs || t > toMs) continue;
    counts[Math.min(bins - 1, Math.floor((t - fromMs) / binMs))]++;
    attempts++;
  }
  const busiest = Math.max(...counts);
  // Any 100 ms, not only the ones starting on a bin boundary: a wave split by a boundary still counts whole.
  const inWindow = arrivals.filter((t) => t >= fromMs && t <= toMs).sort((x, y) => x - y);
  let sliding = 0;
  for (let i = 0, j = 0; i < inWindow.length; i++) {
    while (inWindow[i] - inWindow[j] >= binMs) j++;
    sliding = Math.max(sliding, i - j + 1);
  }
  const mean = attempts / bins;
  return {
    attempts,
    bins,
    busiest,
    mean: Math.round(mean * 100) / 100,
    ratio: Math.round((busiest / mean) * 100) / 100,
    sliding,
    slidingRatio: Math.round((sliding / mean) * 100) / 100,
    counts,
  };
}
