import { z } from 'zod';
import { aggregateSchema, explainSchema, pipelineSchema, privacySchema } from './pipeline.js';

/**
 * The one config schema: the TypeScript type, the validator and the JSON Schema
 * (schemas/config.schema.json) all come from here. Every key has a default; the defaults are the
 * built-in demo (test images -> demo model -> embedded broker on 127.0.0.1).
 */

/** Names that become MQTT topic levels: no '/', '+', '#', spaces or leading dots. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const nameMessage = 'must be 1-64 letters, digits, "_" or "-", starting with a letter or digit';

const port = z.int().min(1).max(65535);
const host = z.string().min(1);

export const reconnectSchema = z.strictObject({
  initialMs: z.int().min(10).max(600_000).default(1000).describe('First wait after a camera fails; doubles after each failed attempt'),
  maxMs: z.int().min(10).max(3_600_000).default(30_000).describe('Longest wait between attempts'),
  jitter: z
    .number()
    .min(0)
    .max(1)
    .default(0.2)
    .describe('Each wait is shortened by a random fraction up to this, so cameras do not retry in step'),
  stallMs: z
    .int()
    .min(100)
    .max(600_000)
    .default(10_000)
    .describe('No frame for this long counts as a failure (a source that hangs without an error)'),
});

/** Which results of a camera are published, and the stable rule that events (and the `stable` policy) use. */
export const publishSchema = z
  .strictObject({
    policy: z
      .enum(['every', 'change', 'stable', 'interval'])
      .default('every')
      .describe('every result | change: the top-1 label changed | stable: a label became stable | interval: at most one per intervalSec'),
    intervalSec: z.number().positive().max(86_400).default(1).describe('interval policy: the least time between two published results'),
    stable: z
      .strictObject({
        k: z.int().min(1).max(1000).default(3).describe('frames, out of the last n, that must carry the label'),
        n: z.int().min(1).max(1000).default(5).describe('window length in frames'),
        minScore: z.number().min(0).max(1).default(0.5).describe('least mean score of those k frames'),
      })
      .prefault({})
      .superRefine((s, ctx) => {
        if (s.k > s.n) ctx.addIssue({ code: 'custom', path: ['k'], input: s.k, message: `must be <= n (${s.n})` });
      }),
    events: z.boolean().default(true).describe('publish change/stable/cleared decisions on <camera>/event'),
  })
  .describe('Publish policy of this camera');

export const cameraSchema = z.strictObject({
  uri: z
    .string()
    .min(1)
    .describe('Camera URI: images:///dir, test://ball, file:///video.mp4, v4l2:///dev/video0, csi://0, rtsp://..., gst://...'),
  fps: z
    .number()
    .min(0.01)
    .max(1000)
    .optional()
    .describe(
      'Frames per second, 0.01 (a frame every 100 s) to 1000 (images: the cycle rate, default 2; test://: ' +
        'the rate, default 30; v4l2/csi/file/rtsp: a cap: the camera runs at a rate it has at or above it, ' +
        'frames are dropped down to it)',
    ),
  enabled: z.boolean().default(true),
  width: z
    .int()
    .min(16)
    .max(8192)
    .optional()
    .describe('Frame width (v4l2/csi: the camera mode; test://: the pattern; file/rtsp: scaled to); set with height'),
  height: z.int().min(16).max(8192).optional().describe('Frame height; set with width'),
  format: z
    .enum(['auto', 'mjpeg', 'yuyv', 'nv12', 'i420', 'gray8'])
    .optional()
    .describe('v4l2 pixel format asked of the camera (default auto: GStreamer picks)'),
  latencyMs: z.int().min(0).max(60_000).optional().describe('rtsp jitter buffer, ms (default 200)'),
  transport: z.enum(['auto', 'tcp', 'udp']).optional().describe('rtsp transport (default auto: UDP, then TCP)'),
  loop: z.boolean().optional().describe('file://: start again at the end (default false: the camera stops with reason "eos")'),
  reconnect: reconnectSchema.prefault({}),
  publish: publishSchema.prefault({}),
  pipeline: z.string().min(1).optional().describe('run this named pipeline (pipelines.<name>) instead of the one model'),
  aggregate: aggregateSchema
    .optional()
    .describe('pipeline cameras: tracking and per-region averaging over frames (defaults: window 15, minFrames 5)'),
  mirror: z
    .boolean()
    .optional()
    .describe("the camera shows a mirror image (a selfie view): left and right keypoints are swapped back to the subject's"),
  privacy: privacySchema.optional().describe('what of this camera may leave the device: snapshots (redact | on | off) and crops'),
  explain: explainSchema
    .optional()
    .describe(
      'heatmaps of where the classifier looked: off | every (each result) | assessment (pipeline ' +
        "cameras); default: the crop stage's explain, else off",
    ),
});

export const providerName = z.enum(['tensorrt', 'cuda', 'cpu']);

export const modelSchema = z.strictObject({
  path: z.string().min(1).optional().describe('Model package folder (manifest.yaml + model.onnx); default: the built-in demo'),
  providers: z
    .union([z.literal('auto'), z.array(providerName).min(1)], { error: 'must be "auto" or a list of "tensorrt", "cuda", "cpu"' })
    .default('auto')
    .describe('"auto" (tensorrt -> cuda -> cpu) or an explicit ordered list'),
  intraOpThreads: z.int().min(1).max(64).optional().describe('ONNX Runtime intra-op threads (default: ORT decides)'),
  interOpThreads: z.int().min(1).max(64).optional(),
  intraOpSpinning: z
    .boolean()
    .default(false)
    .describe(
      'Let ORT intra-op threads spin-wait between work items (ORT default); off, they sleep and leave the cores to capture and the main thread',
    ),
  workerNice: z
    .int()
    .min(0)
    .max(19)
    .default(5)
    .describe('How many nice steps below the main thread the inference worker runs (Linux; 0: same priority)'),
  gpuId: z.int().min(0).max(63).default(0).describe('GPU used by the TensorRT and CUDA providers'),
  cacheDir: z
    .string()
    .min(1)
    .optional()
    .describe('TensorRT engine cache folder; default $CACHE_DIRECTORY (systemd) or ~/.cache/edge-inferd'),
  inferMaxBytes: z
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(10 * 1024 * 1024)
    .describe('POST /infer: the largest image body accepted, in bytes'),
  keep: z
    .int()
    .min(1)
    .max(10)
    .default(2)
    .describe('model packages installed over MQTT kept on disk (the running one included), for cmd/model/rollback'),
  rollout: z
    .strictObject({
      enabled: z.boolean().default(true).describe('accept cmd/model/install and cmd/model/rollback'),
      dir: z
        .string()
        .min(1)
        .optional()
        .describe('where installed packages, downloads and state.json live; default: models/ beside the journal (the state directory)'),
      maxBytes: z
        .int()
        .min(1024)
        .max(8 * 1024 * 1024 * 1024)
        .default(512 * 1024 * 1024)
        .describe('largest package archive downloaded, and largest total unpacked, in bytes'),
      caFile: z
        .string()
        .min(1)
        .optional()
        .describe('PEM file of an extra CA trusted for https package URLs (beside the system roots); verification cannot be switched off'),
      selftestFrames: z
        .int()
        .min(1)
        .max(100)
        .default(3)
        .describe('a package without selftest/ must infer this many frames without an error'),
      idleTimeoutSec: z.number().min(1).max(3600).default(60).describe('a download with no byte for this long fails'),
      timeoutSec: z
        .number()
        .min(1)
        .max(7 * 24 * 3600)
        .default(3600)
        .describe('a download that has not finished within this long fails (the part file is kept for a resume)'),
      reserveBytes: z
        .int()
        .min(0)
        .max(1024 * 1024 * 1024 * 1024)
        .default(64 * 1024 * 1024)
        .describe(
          'free space a download always leaves on the disk of model.rollout.dir (for the journal): checked before against ' +
            'Content-Length (or maxBytes) and while bytes arrive',
        ),
      fileRoot: z
        .string()
        .min(1)
        .optional()
        .describe('the only directory file:// package URLs may name (files below it); unset: file:// URLs are refused'),
    })
    .prefault({}),
});

const qos = z.union([z.literal(0), z.literal(1), z.literal(2)]);
/** How one kind of message is published. */
const topicPolicy = (defaultQos: 0 | 1 | 2, what: string) =>
  z
    .strictObject({
      qos: qos.default(defaultQos).describe(`QoS of ${what}`),
      retain: z.boolean().default(false).describe(`retain ${what} (the broker keeps the last one per topic)`),
    })
    .prefault({});

export const mqttTlsSchema = z.strictObject({
  ca: z.string().min(1).optional().describe('PEM file of the CA that signed the broker certificate (default: the system CAs)'),
  cert: z.string().min(1).optional().describe('PEM client certificate file (mutual TLS)'),
  key: z.string().min(1).optional().describe('PEM private key file of the client certificate'),
  rejectUnauthorized: z
    .boolean()
    .default(true)
    .describe('verify the broker certificate; false is insecure and is warned about at every start'),
});

export const mqttSchema = z.strictObject({
  url: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1).max(16)])
    .default('embedded')
    .describe(
      '"embedded" (start a broker in the daemon), mqtt://host:port, mqtts://host:port, or a list of broker ' +
        'URLs tried in turn (failover: each attempt goes to the next)',
    ),
  prefix: z.string().regex(NAME_RE, nameMessage).default('edge-inferd'),
  clientId: z.string().min(1).max(128).optional().describe('default: edge-inferd-<deviceId>; stable, so the broker keeps the session'),
  protocolVersion: z
    .union([z.literal(4), z.literal(5)])
    .optional()
    .describe(
      '5 (MQTT 5) or 4 (3.1.1); unset: 5 against external brokers with a fall back to 4 when the broker refuses 5, and 4 for the embedded one',
    ),
  username: z.string().optional(),
  password: z.string().optional().describe('prefer passwordFile or the EDGE_INFERD_MQTT__PASSWORD environment variable'),
  passwordFile: z.string().optional().describe('file holding the password (read again at every reconnect)'),
  tls: mqttTlsSchema.optional().describe('TLS options for mqtts:// (server verification is on unless rejectUnauthorized is false)'),
  keepaliveSec: z.int().min(5).max(3600).default(30),
  reconnectMinSec: z
    .number()
    .min(0.05)
    .max(3600)
    .default(1)
    .describe('first reconnect wait cap; each wait is random in [0, min(reconnectMaxSec, reconnectMinSec * 2^failures)] (full jitter)'),
  reconnectMaxSec: z.number().min(0.1).max(3600).default(15).describe('largest reconnect wait cap (see reconnectMinSec)'),
  statusIntervalSec: z
    .number()
    .min(0)
    .max(86400)
    .default(60)
    .describe('republish the retained status (uptime, journal depth, last error) this often; 0: only on connect and changes'),
  persistentSession: z
    .boolean()
    .default(true)
    .describe('clean: false, so the broker keeps subscriptions and queued commands while the device is offline'),
  sessionExpirySec: z
    .int()
    .min(0)
    .max(4294967295)
    .default(86400)
    .describe('MQTT 5 session expiry: how long the broker keeps the session after a disconnect'),
  inflight: z
    .int()
    .min(1)
    .max(65535)
    .default(64)
    .describe("publish window: QoS>=1 messages in flight at once (capped by the broker's receive maximum)"),
  resultExpirySec: z.int().min(1).max(4294967295).optional().describe('MQTT 5 message expiry of results (default: none)'),
  topics: z
    .strictObject({
      result: topicPolicy(1, 'results'),
      event: topicPolicy(1, 'events'),
      stats: topicPolicy(0, 'stats'),
    })
    .prefault({}),
  embedded: z
    .strictObject({
      host: host.default('127.0.0.1'),
      port: port.default(1883),
      websocket: z
        .strictObject({
          host: host
            .default('127.0.0.1')
            .describe('listen address; beyond loopback needs mqtt.username and mqtt.passwordFile, as the TCP one'),
          port: port.default(9001),
          path: z
            .string()
            .regex(/^\/[A-Za-z0-9._~/-]*$/, 'must be a URL path starting with "/"')
            .default('/mqtt')
            .describe('URL path of the WebSocket endpoint (MQTT.js connects to ws://host:port/mqtt)'),
        })
        .optional()
        .describe('also accept MQTT over WebSockets (for a browser page, e.g. with MQTT.js); off unless set'),
    })
    .prefault({}),
});

export const journalSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .optional()
    .describe('SQLite file; default $STATE_DIRECTORY/journal.sqlite under systemd, else ~/.local/state/edge-inferd/journal.sqlite'),
  maxBytes: z
    .int()
    .min(65536)
    .default(64 * 1024 * 1024)
    .describe('bound on the journaled topic+payload bytes; oldest are evicted past it'),
  maxRows: z.int().min(100).default(200_000).describe('bound on journaled messages; oldest are evicted past it'),
  retentionHours: z.number().positive().max(87_600).default(168).describe('sent messages older than this are deleted (history window)'),
  synchronous: z
    .enum(['normal', 'full'])
    .default('normal')
    .describe('SQLite synchronous level: normal survives a crash of the daemon; full also survives power loss (an fsync per write batch)'),
});

export const httpSchema = z.strictObject({
  enabled: z.boolean().default(true),
  host: host.default('127.0.0.1').describe('Listen address; anything but loopback requires token or tokenFile'),
  port: z
    .int()
    .min(0)
    .max(65535)
    .default(8321)
    .describe('Listen port; 0: a free port the system picks (the `running` log line and /status say which)'),
  kiosk: z
    .boolean()
    .default(false)
    .describe('serve the example kiosk page (examples/kiosk/) at /kiosk/: live preview and results from /events'),
  token: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe('Bearer token required on every endpoint but the status page; prefer tokenFile or EDGE_INFERD_HTTP__TOKEN'),
  tokenFile: z.string().min(1).optional().describe('File holding the bearer token (first line)'),
  allowedHosts: z
    .array(z.string().regex(/^[A-Za-z0-9.-]+$|^\[?[0-9A-Fa-f:.]+\]?$/, 'must be a host name or an IP address, without port'))
    .default([])
    .describe(
      'Host header names served besides 127.0.0.1, localhost, [::1] and http.host (with the listening port); ' +
        'other Hosts get 421 (DNS rebinding)',
    ),
  limits: z
    .strictObject({
      connections: z.int().min(4).max(65_536).default(128).describe('open connections in all; more are answered 503 and closed'),
      perClient: z.int().min(1).max(65_536).default(16).describe('open connections from one address; more are answered 503 and closed'),
      bodyTimeoutSec: z.int().min(1).max(3600).default(30).describe('a request (headers and body) must arrive within this, else 408'),
      inferConcurrent: z
        .int()
        .min(1)
        .max(64)
        .default(1)
        .describe(
          'POST /infer requests at once (upload, decode, inference); more get 503 BUSY. Each at the pixel limit costs about 150 MB at its peak',
        ),
    })
    .prefault({})
    .describe('What the HTTP endpoint takes at once, so a flood cannot starve the cameras or /healthz'),
  cors: z
    .strictObject({
      origins: z
        .array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be an origin: http(s)://host[:port], no path'))
        .max(32)
        .default([])
        .describe('web page origins allowed to read the endpoints from another origin (CORS); none by default'),
    })
    .prefault({}),
  events: z
    .strictObject({
      maxClients: z.int().min(1).max(1024).default(32).describe('GET /events streams open at once; more get 503'),
      heartbeatSec: z
        .number()
        .min(1)
        .max(300)
        .default(15)
        .describe('a heartbeat event on every stream this often; a client that takes no data for as long is dropped'),
      bufferBytes: z
        .int()
        .min(4096)
        .max(64 * 1024 * 1024)
        .default(256 * 1024)
        .describe("bytes waiting for one client's socket beyond which it is fed from the journal at its own pace"),
    })
    .prefault({})
    .describe('GET /events: results and events as Server-Sent Events, resumable from the journal'),
  preview: z
    .strictObject({
      maxFps: z.number().min(0.1).max(60).default(10).describe('GET /preview.mjpeg: the highest frame rate sent (a ?fps= above is capped)'),
      maxClients: z.int().min(1).max(256).default(4).describe('preview streams open at once; more get 503'),
      quality: z.int().min(10).max(100).default(70).describe('JPEG quality of the preview frames'),
    })
    .prefault({})
    .describe('GET /preview.mjpeg: the frames behind the results as an MJPEG stream'),
});

export const healthSchema = z.strictObject({
  stallAfterSec: z
    .number()
    .positive()
    .max(3600)
    .default(10)
    .describe('A streaming camera with no result for max(this, 5 frame periods) is a stall: /healthz 503, watchdog pings stop'),
  engineBuildTimeoutSec: z.int().min(10).max(86_400).default(1800).describe('An engine (TensorRT) build longer than this counts as hung'),
  deviceSampleSec: z.number().min(1).max(3600).default(15).describe('How often device temperature and throttling are read for /metrics'),
});

export const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('auto: pretty on a TTY, JSON lines otherwise'),
});

export const statsSchema = z.strictObject({
  intervalSec: z.number().min(0).max(86_400).default(30).describe('period of the stats message; 0 turns it off'),
});

export const commandsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('subscribe to <prefix>/<deviceId>/cmd/+'),
  maxBytes: z.int().min(64).max(1_048_576).default(16_384).describe('larger command payloads are refused with an error response'),
});

export const homeAssistantSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('publish Home Assistant MQTT discovery configs (retained)'),
  prefix: z.string().regex(NAME_RE, nameMessage).default('homeassistant').describe('Home Assistant discovery prefix'),
});

export const configSchema = z.strictObject({
  deviceId: z.string().regex(NAME_RE, nameMessage).optional().describe('default: the hostname'),
  cameras: z
    .record(z.string().regex(NAME_RE, 'camera name ' + nameMessage), cameraSchema)
    .optional()
    .describe('Cameras by name; default: one camera "demo" on the demo samples'),
  model: modelSchema.prefault({}),
  pipelines: z
    .record(z.string().regex(NAME_RE, 'pipeline name ' + nameMessage), pipelineSchema)
    .default({})
    .describe('Named pipelines of stages a camera can run (cameras.<name>.pipeline)'),
  mqtt: mqttSchema.prefault({}),
  http: httpSchema.prefault({}),
  health: healthSchema.prefault({}),
  log: logSchema.prefault({}),
  stats: statsSchema.prefault({}),
  commands: commandsSchema.prefault({}),
  homeassistant: homeAssistantSchema.prefault({}),
  journal: journalSchema.prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type CameraConfig = z.output<typeof cameraSchema>;
export type ReconnectConfig = z.output<typeof reconnectSchema>;
export type PublishConfig = z.output<typeof publishSchema>;
export type ProviderName = z.output<typeof providerName>;

/** The config after defaults that depend on the machine (hostname, package paths) are filled in. */
export interface Config extends Omit<ParsedConfig, 'deviceId' | 'cameras' | 'model' | 'journal'> {
  deviceId: string;
  cameras: Record<string, CameraConfig>;
  model: ParsedConfig['model'] & { path: string; rollout: ParsedConfig['model']['rollout'] & { dir: string } };
  journal: ParsedConfig['journal'] & { path: string };
  /** Where the config came from: a file path, or "built-in demo". */
  source: string;
}

export function configJsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' });
}
