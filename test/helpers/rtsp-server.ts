import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { rgbHex } from './gst-media.js';
import { IN_CI, needTool } from './tools.js';

/**
 * The test RTSP server (test/fixtures/rtsp/rtsp-server.py: gst-rtsp-server through python3-gi)
 * streaming a solid colour as MJPEG over RTP at rtsp://127.0.0.1:<port>/test. stop() and start()
 * take it away and bring it back on the same port.
 */
export interface RtspServer {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const SCRIPT = resolve(import.meta.dirname, '../fixtures/rtsp/rtsp-server.py');
const APT = 'python3-gi gir1.2-gst-rtsp-server-1.0';

/** Undefined (after a loud warning) where python3-gi or gst-rtsp-server is missing; throws in CI. */
export async function startRtspServer(o: { port: number; rgb: readonly number[]; fps?: number }): Promise<RtspServer | undefined> {
  // Debian's python3 (where python3-gi lives) before any other python3 on PATH.
  const python = needTool('python3', APT, ['/usr/bin/python3']);
  if (!python) return undefined;
  let proc: ChildProcess | undefined;
  const start = () =>
    new Promise<void>((ok, fail) => {
      let out = '';
      let err = '';
      const p = spawn(python, [SCRIPT, '--port', String(o.port), '--color', rgbHex(o.rgb), '--fps', String(o.fps ?? 15)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc = p;
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('READY')) ok();
      });
      p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      p.once('exit', (code) => fail(new Error(`rtsp-server.py exited with ${code} before it was ready: ${err}`)));
    });
  try {
    await start();
  } catch (e) {
    const msg = String(e);
    if (!IN_CI && /No module named 'gi'|Namespace GstRtspServer not available/.test(msg)) {
      console.warn(`\n*** SKIPPING: the RTSP test server needs: apt-get install ${APT} ***\n`);
      return undefined;
    }
    throw e;
  }
  return {
    url: `rtsp://127.0.0.1:${o.port}/test`,
    start,
    stop: async () => {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      await new Promise<void>((r) => {
        p.once('exit', () => r());
        p.kill('SIGTERM');
      });
    },
  };
}
