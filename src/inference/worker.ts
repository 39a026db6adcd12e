// ORT reads the real process environment, which the spawning thread has already set (worker-engine.ts);
// here it keeps this thread's copy of process.env saying the same (src/ort-telemetry.ts).
import '../ort-telemetry.js';
import { getPriority, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { errorCode, errorMessage } from '../errors.js';
import { Engine } from './engine.js';
import { tensorView } from './tensorize.js';
import { nameThisThread, THREAD_NAMES } from './thread-name.js';
import { TfjsEngine } from './tfjs.js';
import type { FromWorker, ToWorker, WireError } from './worker-protocol.js';

/**
 * The inference worker: one ORT session; session.run blocks the thread it runs on, so it runs here,
 * off the main thread. An ONNX model gets its input tensor ready-made in the shared slot (the main
 * thread writes it natively while the previous frame infers): this thread runs the session and the
 * postprocessing. TF.js models get the frame and preprocess here. Messages are handled strictly in
 * order; the main thread decides what to send and when (worker-engine.ts).
 */

if (!parentPort) throw new Error('worker.ts must run in a worker thread');
const port = parentPort;
let engine: Engine | TfjsEngine | undefined;
let chain: Promise<void> = Promise.resolve();

const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function wire(err: unknown): WireError {
  const problems = (err as { problems?: unknown }).problems;
  return { code: errorCode(err), message: errorMessage(err), ...(Array.isArray(problems) ? { problems: problems as string[] } : {}) };
}

/**
 * Linux nice values are per thread: raising this thread's (before ORT creates its intra-op threads,
 * which inherit it) lets the main thread (MQTT, HTTP, watchdog) take a core at once when it wakes.
 */
function lowerPriority(nice: number): void {
  if (nice <= 0) return;
  try {
    setPriority(0, Math.min(19, getPriority(0) + nice));
  } catch {
    // not permitted or not supported: run at the inherited priority
  }
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case 'load': {
      lowerPriority(msg.nice);
      // ORT's intra-op threads are created with the session and inherit this thread's name: they
      // are edge-ort, and this thread edge-infer once they exist (top -H, docs/performance.md).
      nameThisThread(THREAD_NAMES.ortPool);
      try {
        engine =
          msg.pkg.format === 'tfjs'
            ? await TfjsEngine.load(msg.pkg)
            : await Engine.load(msg.pkg, { ...msg.options, onEvent: (event) => post({ type: 'event', event }) });
        const t0 = performance.now();
        await engine.warmup();
        nameThisThread(THREAD_NAMES.worker);
        post({
          type: 'loaded',
          info: engine.info,
          attempts: [...engine.attempts],
          engineCache: engine instanceof Engine ? engine.engineCache : undefined,
          warmupMs: performance.now() - t0,
        });
      } catch (err) {
        await engine?.close().catch(() => undefined);
        engine = undefined;
        post({ type: 'load-failed', error: wire(err) });
      }
      return;
    }
    case 'infer': {
      try {
        if (!engine) throw new Error('no model loaded in this worker');
        const { byteLength, ...meta } = msg.frame;
        const inference = await engine.infer({ ...meta, data: new Uint8Array(msg.buf, 0, byteLength) });
        const transfer = inference.task === 'segment' && inference.maskPng ? [inference.maskPng.buffer as ArrayBuffer] : [];
        post({ type: 'result', id: msg.id, inference }, transfer);
      } catch (err) {
        post({ type: 'failed', id: msg.id, error: wire(err) });
      }
      return;
    }
    case 'infer-tensor': {
      try {
        if (!(engine instanceof Engine)) throw new Error('no ONNX model loaded in this worker');
        const data = tensorView(
          engine.pkg.manifest.input.dtype,
          msg.buf,
          engine.inputDims.reduce((a, b) => a * b, 1),
        );
        const inference = await engine.inferTensor(data, msg.geometry, msg.preprocessMs);
        const transfer = inference.task === 'segment' && inference.maskPng ? [inference.maskPng.buffer as ArrayBuffer, msg.buf] : [msg.buf];
        post({ type: 'result', id: msg.id, inference, buf: msg.buf }, transfer);
      } catch (err) {
        post({ type: 'failed', id: msg.id, error: wire(err), buf: msg.buf }, [msg.buf]);
      }
      return;
    }
    case 'crops': {
      try {
        if (!(engine instanceof Engine)) throw new Error('crop stages run on ONNX models only');
        const { byteLength, ...meta } = msg.frame;
        post({
          type: 'result',
          id: msg.id,
          inference: await engine.inferCrops({ ...meta, data: new Uint8Array(msg.buf, 0, byteLength) }, msg.request),
        });
      } catch (err) {
        post({ type: 'failed', id: msg.id, error: wire(err) });
      }
      return;
    }
    case 'close': {
      await engine?.close().catch(() => undefined);
      engine = undefined;
      post({ type: 'closed' });
      port.close();
      return;
    }
  }
}

port.on('message', (msg: ToWorker) => {
  chain = chain.then(() => handle(msg));
});
