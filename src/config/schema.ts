import { z } from 'zod';

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

export const cameraSchema = z.strictObject({
  uri: z.string().min(1).describe('Camera URI: images:///dir, test://ball, file:///video.mp4, v4l2:///dev/video0, csi://0, rtsp://..., gst://...'),
  fps: z.number().positive().max(1000).optional().describe('Frames taken per second (images: the cycle rate, default 2; cameras: a cap)'),
  enabled: z.boolean().default(true),
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
  workerNice: z.int().min(0).max(19).default(5).describe('How many nice steps below the main thread the inference worker runs (Linux; 0: same priority)'),
  gpuId: z.int().min(0).max(63).default(0).describe('GPU used by the TensorRT and CUDA providers'),
  cacheDir: z.string().min(1).optional().describe('TensorRT engine cache folder; default $CACHE_DIRECTORY (systemd) or ~/.cache/edge-inferd'),
  inferMaxBytes: z
    .int()
    .min(1024)
    .max(256 * 1024 * 1024)
    .default(10 * 1024 * 1024)
    .describe('POST /infer: the largest image body accepted, in bytes'),
});

export const mqttSchema = z.strictObject({
  url: z
    .string()
    .min(1)
    .default('embedded')
    .describe('"embedded" (start a broker in the daemon) or mqtt://host:port, mqtts://host:port'),
  prefix: z.string().regex(NAME_RE, nameMessage).default('edge-inferd'),
  clientId: z.string().min(1).max(128).optional().describe('default: edge-inferd-<deviceId>'),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).optional().describe('5 (MQTT 5) against external brokers, 4 (3.1.1) for the embedded one'),
  username: z.string().optional(),
  password: z.string().optional().describe('prefer passwordFile or the EDGE_INFERD_MQTT__PASSWORD environment variable'),
  passwordFile: z.string().optional(),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1).describe('QoS of results'),
  keepaliveSec: z.int().min(5).max(3600).default(30),
  embedded: z
    .strictObject({
      host: host.default('127.0.0.1'),
      port: port.default(1883),
    })
    .prefault({}),
});

export const httpSchema = z.strictObject({
  enabled: z.boolean().default(true),
  host: host.default('127.0.0.1'),
  port: port.default(8321),
});

export const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('auto: pretty on a TTY, JSON lines otherwise'),
});

export const configSchema = z.strictObject({
  deviceId: z.string().regex(NAME_RE, nameMessage).optional().describe('default: the hostname'),
  cameras: z
    .record(z.string().regex(NAME_RE, 'camera name ' + nameMessage), cameraSchema)
    .optional()
    .describe('Cameras by name; default: one camera "demo" on the demo samples'),
  model: modelSchema.prefault({}),
  mqtt: mqttSchema.prefault({}),
  http: httpSchema.prefault({}),
  log: logSchema.prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type CameraConfig = z.output<typeof cameraSchema>;
export type ProviderName = z.output<typeof providerName>;

/** The config after defaults that depend on the machine (hostname, package paths) are filled in. */
export interface Config extends Omit<ParsedConfig, 'deviceId' | 'cameras' | 'model'> {
  deviceId: string;
  cameras: Record<string, CameraConfig>;
  model: ParsedConfig['model'] & { path: string };
  /** Where the config came from: a file path, or "built-in demo". */
  source: string;
}

export function configJsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' });
}
