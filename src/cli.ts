#!/usr/bin/env node
// First: ONNX Runtime telemetry off before anything can create an ORT session (src/ort-telemetry.ts).
import './ort-telemetry.js';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from './config/load.js';
import { configJsonSchema } from './config/schema.js';
import { DEMOS, type DemoName } from './config/demo.js';
import { errorMessage } from './errors.js';
import { createLogger } from './log.js';
import { runHistory } from './journal/history-cli.js';
import { runFleet } from './publish/fleet-cli.js';
import { runDaemon } from './main.js';
import { formatSelftest, gpuSelftest } from './gpu-selftest.js';
import { formatProbe, probe } from './probe.js';
import { buildEngine, inferImages } from './oneshot.js';
import { VERSION } from './version.js';

const HELP = `edge-inferd ${VERSION}: camera -> ONNX model -> MQTT, for edge devices

Usage:
  edge-inferd [run] [--config FILE]     run the daemon (no config at all: the built-in demo)
  edge-inferd run --demo eyes           the eyes kiosk demo: face -> eyes pipeline, assessments
  edge-inferd run --demo tray           the recycling tray as a pipeline: items -> material of each
  edge-inferd check-config [FILE]       validate a config file; exit 0 if valid, 1 with every problem
  edge-inferd config-schema             print the config's JSON Schema
  edge-inferd probe [--config FILE] [--json]
                                        what this machine offers: GStreamer, cameras, ONNX Runtime
                                        providers, GPU, memory; and the config checked (exit 1 if invalid)
  edge-inferd probe --gpu-selftest [--model DIR] [--frames N] [--json]
                                        load the model on TensorRT (build, then cache hit) and CUDA, run
                                        N frames (20) on GPU and CPU, compare; exit 0 pass, 1 fail,
                                        3 no NVIDIA GPU on this machine
  edge-inferd infer [--model DIR | --camera NAME] IMAGE|VIDEO... [--fps N]
                                        run the model (or that camera's whole pipeline) on image
                                        files; one result JSON per line; a video file: one per
                                        frame (at most N per second of video) with frame.timeMs,
                                        and a pipeline camera's assessments
  edge-inferd model init FILE|DIR [--name N] [--out DIR] [--sample IMAGE]
                                        a model package from what the model says about itself (docs/models.md)
  edge-inferd build-engine [--model DIR]
                                        build (or find) the TensorRT engine in the cache folder
  edge-inferd history [--camera NAME] [--since ISO|DURATION] [--limit N] [--json] [--events] [--journal FILE]
                                        recent results (--events: events, assessments) from the journal (works while the daemon runs);
                                        --since 2024-05-01T08:00:00Z or 15m, 2h, 7d; --limit default 20
  edge-inferd fleet [--broker URL] [--prefix P] [--json]
                                        every device's retained status on the broker (<prefix>/+/status):
                                        state, version, model, provider, uptime, journal depth, last error;
                                        broker, prefix and credentials default to the config's mqtt keys
  edge-inferd --version | --help

Config: --config FILE, else ${DEFAULT_CONFIG_PATH} if it exists, else the demo.
Environment overrides: EDGE_INFERD_<KEY>[__<KEY>...], e.g. EDGE_INFERD_MQTT__URL=mqtt://broker:1883
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      model: { type: 'string', short: 'm' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      camera: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      journal: { type: 'string' },
      demo: { type: 'string' },
      events: { type: 'boolean' },
      broker: { type: 'string' },
      prefix: { type: 'string' },
      'gpu-selftest': { type: 'boolean' },
      frames: { type: 'string' },
      fps: { type: 'string' },
      name: { type: 'string' },
      out: { type: 'string' },
      sample: { type: 'string' },
    },
  });
  if (values.help || values.version) {
    process.stdout.write(values.help ? HELP : `${VERSION}\n`);
    return 0;
  }
  const [cmd = 'run', ...rest] = positionals;
  switch (cmd) {
    case 'run':
      if (values.demo !== undefined && !(DEMOS as readonly string[]).includes(values.demo)) {
        process.stderr.write(`edge-inferd: --demo: no demo "${values.demo}" (demos: ${DEMOS.join(', ')})\n`);
        return 2;
      }
      await runDaemon({ configFile: values.config, demo: values.demo as DemoName | undefined });
      return -1; // keeps running; exits from its signal handlers
    case 'check-config': {
      const file = rest[0] ?? values.config;
      try {
        const c = loadConfig({ file });
        const pipelines = Object.keys(c.pipelines).length ? `, pipelines: ${Object.keys(c.pipelines).join(', ')}` : '';
        process.stdout.write(
          `${c.source}: OK (device ${c.deviceId}, cameras: ${Object.keys(c.cameras).join(', ')}, model: ` +
            `${c.model.path}${pipelines}, mqtt: ${[c.mqtt.url].flat().join(', ')})\n`,
        );
        return 0;
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(
            `${err.file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}\n${err.problems.map((p) => `  ${p}\n`).join('')}`,
          );
          return 1;
        }
        throw err;
      }
    }
    case 'probe': {
      if (values['gpu-selftest']) {
        const config = loadConfig({ file: rest[0] ?? values.config });
        const frames = values.frames === undefined ? undefined : Number(values.frames);
        if (frames !== undefined && !(Number.isInteger(frames) && frames >= 1 && frames <= 10_000)) {
          process.stderr.write(`edge-inferd probe: --frames must be a whole number from 1 to 10000 (got "${values.frames}")\n`);
          return 2;
        }
        const r = await gpuSelftest({
          modelDir: values.model ? resolve(values.model) : config.model.path,
          frames,
          deviceId: config.model.gpuId,
          intraOpThreads: config.model.intraOpThreads,
        });
        process.stdout.write(values.json ? JSON.stringify(r, null, 2) + '\n' : formatSelftest(r));
        return r.exitCode;
      }
      const report = await probe({ configFile: rest[0] ?? values.config });
      process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatProbe(report));
      return report.config.ok ? 0 : 1;
    }
    case 'infer':
    case 'build-engine': {
      const config = loadConfig({ file: values.config });
      if (values.model) config.model.path = resolve(values.model);
      // Results go to stdout; the log (provider fallbacks, engine builds) to stderr.
      const log = createLogger({
        level: cmd === 'infer' ? 'error' : 'info',
        format: 'json',
        destination: pino.destination({ fd: 2, sync: true }),
      });
      const out = { stdout: (t: string) => process.stdout.write(t), stderr: (t: string) => process.stderr.write(t) };
      const fps = values.fps === undefined ? undefined : Number(values.fps);
      if (fps !== undefined && !(fps > 0 && fps <= 1000)) {
        process.stderr.write(
          `edge-inferd infer: --fps must be a number of frames per second of video, above 0 and at most 1000 (got "${values.fps}")\n`,
        );
        return 2;
      }
      return cmd === 'infer' ? inferImages(config, rest, log, out, values.camera, { fps }) : buildEngine(config, log, out);
    }
    case 'history': {
      let journalPath = values.journal;
      if (journalPath === undefined) {
        try {
          journalPath = loadConfig({ file: values.config }).journal.path;
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          process.stderr.write(`edge-inferd history: cannot find the journal: ${err.message}\n(or give --journal FILE)\n`);
          return 1;
        }
      }
      const write = (s: string) => process.stdout.write(s);
      return runHistory(
        {
          journalPath,
          camera: values.camera,
          since: values.since,
          limit: values.limit,
          json: values.json === true,
          events: values.events === true,
        },
        write,
        (s) => process.stderr.write(s),
      );
    }
    case 'model': {
      if (rest[0] !== 'init' || rest.length !== 2) {
        process.stderr.write('edge-inferd model: usage: edge-inferd model init FILE|DIR [--name N] [--out DIR] [--sample IMAGE]\n');
        return 2;
      }
      const { modelInit } = await import('./model-init.js');
      return modelInit(
        { source: rest[1], name: values.name, out: values.out, sample: values.sample },
        { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) },
      );
    }
    case 'fleet': {
      let m: ReturnType<typeof loadConfig>['mqtt'] | undefined;
      try {
        m = loadConfig({ file: values.config }).mqtt;
      } catch (err) {
        if (!(err instanceof ConfigError) || values.broker === undefined) throw err;
        m = undefined; // --broker given: the config is only for credentials
      }
      const configured = m && (typeof m.url === 'string' ? m.url : m.url[0]);
      const broker = values.broker ?? (configured === 'embedded' && m ? `mqtt://${m.embedded.host}:${m.embedded.port}` : configured);
      if (!broker) {
        process.stderr.write('edge-inferd fleet: give --broker URL\n');
        return 2;
      }
      const write = (t: string) => process.stdout.write(t);
      return runFleet(
        {
          broker,
          prefix: values.prefix ?? m?.prefix ?? 'edge-inferd',
          json: values.json === true,
          username: m?.username,
          password: m?.password,
          passwordFile: m?.passwordFile,
          tls: m?.tls,
        },
        write,
        (t) => process.stderr.write(t),
      );
    }
    case 'config-schema':
      process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
      return 0;
    default:
      process.stderr.write(`edge-inferd: unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`edge-inferd: ${errorMessage(err)}\n`);
    process.exitCode = 2;
  },
);
