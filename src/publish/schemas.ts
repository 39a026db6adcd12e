import { z } from 'zod';
import { NAME_RE } from '../config/schema.js';

/**
 * Every MQTT payload, defined once: the TypeScript types (z.output), the validator of incoming
 * commands, and the JSON Schema files shipped in schemas/ (scripts/make-schemas.ts writes them;
 * a test fails when they are stale). The schemas are closed (no unknown properties): they say
 * exactly what this release sends. Within `v: 1` fields are only ever added.
 */

export const PAYLOAD_VERSION = 1 as const;

const v = z.literal(PAYLOAD_VERSION).describe('payload version');
const id = z.uuid().describe('unique per message, for consumer de-duplication');
const iso = z.iso.datetime();
const epochMs = z.int().min(0);
const name = z.string().regex(NAME_RE);
const count = z.int().min(0);
const score = z.number().min(0).max(1);
const stamp = { ts: iso.describe('when the message was made, ISO 8601 UTC'), tsMs: epochMs.describe('the same, epoch ms') };

export const modelRef = z.strictObject({ name: z.string().min(1), version: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
export const policyName = z.enum(['every', 'change', 'stable', 'interval']);
export const cameraStateName = z.enum(['connecting', 'streaming', 'backoff', 'stopped', 'paused']);

export const statusSchema = z
  .strictObject({
    v,
    id,
    state: z.enum(['online', 'offline', 'stopped']).describe('online (birth), offline (the last will), stopped (clean exit)'),
    deviceId: name,
    ...stamp,
    version: z.string().optional().describe('edge-inferd version'),
    model: modelRef.optional(),
    provider: z.string().optional().describe('execution provider in use'),
    cameras: z.array(name).optional().describe('enabled cameras'),
    cameraState: z.record(name, cameraStateName).optional().describe('each camera: its capture state, or paused'),
    uptimeSec: count.optional().describe('seconds since the daemon started'),
    journal: z
      .strictObject({
        pending: count.describe('messages journaled and not yet acknowledged by the broker'),
        oldestPendingAgeSec: z.number().min(0).nullable().describe('age of the oldest of them, s (null when none waits)'),
      })
      .optional()
      .describe('the journal between the cameras and the broker'),
    lastError: z
      .strictObject({
        where: z.string().describe('"camera <name>" or "journal"'),
        code: z.string(),
        message: z.string(),
        atMs: epochMs.optional(),
      })
      .nullable()
      .optional()
      .describe('the newest error a camera or the journal reports now (null: none)'),
  })
  .meta({
    title: 'edge-inferd status',
    description:
      'Topic <prefix>/<deviceId>/status, retained. Birth on connect, last will on a lost connection, ' +
      'stopped on a clean exit; republished when a camera state changes and every mqtt.statusIntervalSec. ' +
      '`edge-inferd fleet` lists these.',
  });

export const stableRef = z
  .strictObject({
    label: z.string(),
    score: score.describe('mean score of the label in the window'),
    frames: count.describe("the label's frames in the window"),
    window: count.describe('frames in the window (n once it has filled)'),
    since: iso.describe('when it became stable'),
    sinceMs: epochMs,
  })
  .describe('the stable label after this frame (k of the last n frames, mean score >= minScore), or null');

const resultBase = {
  v,
  id,
  deviceId: name,
  camera: name.or(z.literal('infer')).describe('the camera, or "infer" for POST /infer and `edge-inferd infer`'),
  seq: z
    .int()
    .min(1)
    .describe('per-camera counter of published results, from 1, continued across restarts from the journal: a gap means a lost message'),
  ...stamp,
  capturedAt: iso,
  capturedAtMs: epochMs,
  model: modelRef,
  provider: z.string(),
  frame: z.strictObject({
    seq: count,
    width: z.int().min(1),
    height: z.int().min(1),
    name: z.string().optional(),
    timeMs: z.number().min(0).optional().describe("`edge-inferd infer` on a video file: the frame's time in the video, ms"),
  }),
  latencyMs: z
    .strictObject({
      preprocess: z.number().min(0),
      inference: z.number().min(0),
      postprocess: z.number().min(0),
      total: z.number().min(0).describe('capture to publish'),
    })
    .describe('latency breakdown, ms'),
  policy: policyName.optional().describe("the camera's publish policy that let this result out (absent for one-shot inference)"),
  stable: stableRef.nullable().optional(),
};

const box = z
  .strictObject({ x: z.number(), y: z.number(), w: z.number().min(0), h: z.number().min(0) })
  .describe('source pixels, top-left corner and size');
const keypoints = z
  .array(
    z.strictObject({ name: z.string(), x: z.number(), y: z.number(), score: z.number().describe("the model's visibility / confidence") }),
  )
  .describe("named points (the manifest's detect.keypoints), source pixels");
const regressPoints = z
  .array(z.strictObject({ name: z.string(), x: z.number(), y: z.number() }))
  .describe("a regress model's values that are coordinates (the manifest's regress.points), as points in source pixels");
const qualitySkip = z
  .enum(['small', 'blurred'])
  .describe("the crop stage's quality gate: too small (minSidePx) or too blurred (minSharpness)");
const heatmap = z
  .strictObject({
    method: z
      .enum(['occlusion', 'cam'])
      .describe(
        "the model manifest's explain.method: occlusion (each grid cell masked in turn) or cam " +
          "(class activation map over the model's feature map, one pass)",
      ),
    label: z.string().describe('the class explained'),
    score: score.describe('its probability on the unmasked crop'),
    rows: z.int().min(1).describe('grid rows: 8 (occlusion) or the feature map height (cam)'),
    cols: z.int().min(1).describe('grid columns: 8 (occlusion) or the feature map width (cam)'),
    values: z
      .array(z.number())
      .describe(
        "row-major, rows x cols over the model's input. occlusion: the class's probability drop when that cell is masked; " +
          'cam: the class activation of that cell over the largest magnitude (-1..1, negative: evidence against it)',
      ),
    png: z
      .string()
      .describe("PNG, base64: the model's input (the crop) with the heatmap laid over it, red where the answer depended on it"),
  })
  .describe(
    'where the classifier looked (explain: every | assessment); only with privacy.includeCrops (local: ' +
      'to loopback clients only), and always in POST /infer?explain=1',
  );
const regionResult = z.strictObject({
  notDetected: z.literal(true).optional().describe('the keypoint the region is centred on was not found'),
  box: box.optional().describe('the crop taken (clipped to the frame), source pixels'),
  sidePx: z.number().min(0).optional(),
  sharpness: z.number().min(0).optional().describe('variance of the Laplacian of the crop (grey 0..255)'),
  skipped: qualitySkip.optional(),
  label: z.string().optional().describe('best class of this crop'),
  score: score.optional(),
  scores: z.record(z.string(), score).optional().describe('probability per class (or per label, multi-label) of the crop stage'),
  on: z.array(z.string()).optional().describe('multi-label crop stages: the labels at or above their threshold, best first'),
  values: z.record(z.string(), z.number()).optional().describe('regress crop stages: the named values'),
  points: regressPoints.optional(),
  crop: z.string().optional().describe('the crop as PNG, base64: only with privacy.includeCrops (local: to loopback clients only)'),
  heatmap: heatmap.optional(),
});
const pipelineObject = z.strictObject({
  track: z.int().min(1).optional().describe('tracker id, stable while the object stays in view'),
  label: z.string(),
  index: count,
  score,
  box,
  keypoints: keypoints.optional(),
  regions: z.record(z.string(), regionResult).describe("per region (e.g. left and right eye, or box) the crop stage's answer"),
});
const stageLatency = z.strictObject({ preprocess: z.number().min(0), inference: z.number().min(0), postprocess: z.number().min(0) });
const pipelineInfo = z
  .strictObject({
    name: z.string(),
    stages: z.array(
      z.strictObject({
        name: z.string(),
        model: modelRef,
        latencyMs: stageLatency,
        crops: count.optional().describe('crops taken'),
        classified: count.optional(),
        skipped: count.optional().describe('crops the quality gate skipped'),
        runs: count.optional().describe('session runs (1 when batched)'),
      }),
    ),
  })
  .describe("the camera's pipeline and what each stage did on this frame");

export const resultSchema = z
  .discriminatedUnion('task', [
    z.strictObject({
      ...resultBase,
      task: z.literal('classify'),
      label: z.string().optional().describe('top-1 label; multi-label models: the best label that is on, absent when none is'),
      score: score.optional().describe('its probability'),
      top: z.array(z.strictObject({ label: z.string(), score, index: count })).min(1),
      on: z
        .array(z.strictObject({ label: z.string(), score, index: count }))
        .optional()
        .describe(
          'multi-label models (classify.outputs sigmoid or label-probabilities): every label at or above its threshold, best first',
        ),
      heatmap: heatmap.optional(),
    }),
    z
      .strictObject({
        ...resultBase,
        task: z.literal('regress'),
        values: z.record(z.string(), z.number()).describe("each named value (output * scale + offset), in the manifest's label order"),
        points: regressPoints.optional(),
      })
      .describe('a regress model: named continuous values, no label'),
    z.strictObject({
      ...resultBase,
      task: z.literal('detect'),
      label: z.string().optional().describe("the best box's label; absent when nothing was detected"),
      score: score.optional(),
      detections: z
        .array(z.strictObject({ label: z.string(), index: count, score, box, keypoints: keypoints.optional() }))
        .describe('best first, after NMS'),
      objects: z.array(pipelineObject).optional().describe('pipeline cameras: the detections with their track ids and per-region results'),
      pipeline: pipelineInfo.optional(),
    }),
    z.strictObject({
      ...resultBase,
      task: z.literal('segment'),
      label: z.string().optional().describe('the class with the largest area'),
      score: score.optional().describe('its area fraction'),
      segments: z.array(z.strictObject({ label: z.string(), index: count, fraction: score })).describe('classes present, largest first'),
      maskPng: z.string().optional().describe('class index per source pixel, greyscale PNG, base64 (when the manifest asks)'),
    }),
  ])
  .meta({
    title: 'edge-inferd result',
    description: 'Topic <prefix>/<deviceId>/<camera>/result: one inference, as let out by the publish policy.',
  });

const eventBase = {
  v,
  id,
  deviceId: name,
  camera: name,
  seq: z.int().min(1).describe('per-camera counter of events, from 1, continued across restarts from the journal'),
  ...stamp,
  label: z.string(),
  score,
  at: iso.describe('capture time of the frame that caused the event (or when the camera was paused)'),
  atMs: epochMs,
  since: iso.describe('start of the state the event is about'),
  sinceMs: epochMs,
  frames: count,
  frame: z.strictObject({ seq: count, name: z.string().optional() }).nullable().describe('the frame that caused it; null for a pause'),
  model: modelRef,
};
const rule = z.strictObject({ k: z.int().min(1), n: z.int().min(1), minScore: score });

const regionAssessment = z.strictObject({
  notDetected: z.boolean().describe('true: fewer than minFrames good frames of this region (not found, or skipped by the quality gate)'),
  label: z.string().optional().describe('the best class of the averaged scores'),
  score: score.optional(),
  scores: z.record(z.string(), score).optional().describe('mean probability per class (or label) over the good frames'),
  on: z
    .array(z.string())
    .optional()
    .describe('multi-label crop stages: the labels whose mean probability is at or above their threshold, best first'),
  values: z.record(z.string(), z.number()).optional().describe('regress crop stages: the mean of each named value over the good frames'),
  frames: count.describe('good frames averaged'),
  seen: count.describe('frames of the window in which the region was found'),
  skipped: z.strictObject({ small: count, blurred: count }).describe('frames of the window the quality gate skipped'),
  crop: z
    .string()
    .optional()
    .describe('the crop of the frame that completed it, PNG, base64: only with privacy.includeCrops (local: to loopback clients only)'),
  heatmap: heatmap.optional(),
});
const trackBase = {
  v,
  id,
  deviceId: name,
  camera: name,
  seq: eventBase.seq,
  ...stamp,
  pipeline: z.string().describe("the camera's pipeline"),
  track: z.int().min(1).describe('tracker id of the subject or item'),
  label: z.string().describe("the detector's label of the object"),
  at: iso,
  atMs: epochMs,
  since: iso.describe('when the track was first seen'),
  sinceMs: epochMs,
  frames: count.describe('frames the track was seen in'),
  model: modelRef.describe('the detector stage'),
};

export const eventSchema = z
  .union([
    z.discriminatedUnion('type', [
      z
        .strictObject({
          ...eventBase,
          type: z.literal('change'),
          previous: z
            .strictObject({ label: z.string(), since: iso, sinceMs: epochMs, frames: count })
            .nullable()
            .describe('the run that ended; null at the first frame'),
        })
        .describe('the top-1 label differs from the previous frame; since = this frame, frames = 1'),
      z
        .strictObject({ ...eventBase, type: z.literal('stable'), rule })
        .describe('a label became stable; score = its mean in the window, since = its oldest frame there, frames = its frames there'),
      z
        .strictObject({ ...eventBase, type: z.literal('cleared'), rule, reason: z.enum(['evidence', 'paused']) })
        .describe(
          'the stable label stopped meeting the rule (evidence) or the camera was paused; since = when it ' +
            'became stable, frames = frames it stayed stable',
        ),
    ]),
    z
      .strictObject({
        ...trackBase,
        type: z.literal('assessment'),
        score: score.describe("the detector's mean score over the track"),
        frame: z
          .strictObject({
            seq: count,
            name: z.string().optional(),
            timeMs: z.number().min(0).optional().describe("`edge-inferd infer` on a video file: the frame's time in the video, ms"),
          })
          .describe('the frame that completed it'),
        box: box.describe('the object on that frame'),
        stageModel: modelRef.describe('the crop stage'),
        regions: z.record(z.string(), regionAssessment),
      })
      .describe('pipeline cameras: once per track, when every region has minFrames good frames or the track has been seen for the window'),
    z
      .strictObject({
        ...trackBase,
        type: z.literal('cleared'),
        reason: z.enum(['left', 'paused']),
        assessed: z.boolean().describe('whether the track had its assessment'),
      })
      .describe('pipeline cameras: the track ended (left: unseen for more than maxMissed frames; paused); at = when it was last seen'),
  ])
  .meta({
    title: 'edge-inferd event',
    description: 'Topic <prefix>/<deviceId>/<camera>/event: decisions of the decide stage, whatever the publish policy.',
  });

export const statsSchema = z
  .strictObject({
    v,
    id,
    seq: z.int().min(1).describe('stats message counter, from 1 at each start'),
    deviceId: name,
    ...stamp,
    intervalSec: z.number().positive(),
    uptimeSec: count,
    cameras: z.record(
      name,
      z.strictObject({
        state: cameraStateName,
        inferred: count.describe('results since start, published or held back'),
        published: count,
        heldBack: count.describe('results the publish policy held back'),
        failures: count.describe('failed inferences'),
        dropped: count.describe('frames replaced by a newer one before inference'),
        events: z.strictObject({ change: count, stable: count, cleared: count }),
        labels: z.record(z.string(), count).describe('top-1 label counts since start, held back or not'),
        fps: z.number().min(0).describe('inferences per second over the last period'),
        latencyMs: z
          .strictObject({ mean: z.number().min(0), max: z.number().min(0) })
          .nullable()
          .describe('preprocess + inference + postprocess over the last period; null without results'),
      }),
    ),
    mqtt: z.strictObject({ connected: z.boolean(), connects: count, publishFailures: count }),
  })
  .meta({ title: 'edge-inferd stats', description: 'Topic <prefix>/<deviceId>/stats, every stats.intervalSec.' });

// ---- commands: <prefix>/<deviceId>/cmd/<name>, answered on cmd/<name>/response ----

const requestId = z.union([z.string().min(1).max(128), z.int()]).describe("the requester's id, echoed as requestId in the response");
const cameraArg = name.describe('camera name');
const stageArg = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\/[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be "<pipeline>/<stage>"')
  .describe(
    'a pipeline stage\'s model ("eyes/eye": pipeline eyes, stage eye) instead of `model`; its state on model/state/<pipeline>/<stage>',
  );

export const commandRequestSchemas = {
  snapshot: z
    .strictObject({
      id: requestId.optional(),
      camera: cameraArg.optional().describe('required when there is more than one camera'),
      quality: z.int().min(1).max(100).default(80).describe('JPEG quality'),
      maxWidth: z.int().min(16).max(8192).optional().describe('scale down (keeping the aspect) to at most this width'),
    })
    .meta({
      title: 'edge-inferd command snapshot',
      description: 'Topic cmd/snapshot: a JPEG of the latest frame inferred, base64 in the response.',
    }),
  reload: z
    .strictObject({ id: requestId.optional() })
    .meta({ title: 'edge-inferd command reload', description: 'Topic cmd/reload: re-read the config file and apply it (as SIGHUP does).' }),
  pause: z.strictObject({ id: requestId.optional(), camera: cameraArg.optional().describe('omitted: every camera') }).meta({
    title: 'edge-inferd command pause',
    description: 'Topic cmd/pause: stop inferring on a camera (the camera keeps capturing, nothing is published for it).',
  }),
  resume: z
    .strictObject({ id: requestId.optional(), camera: cameraArg.optional().describe('omitted: every camera') })
    .meta({ title: 'edge-inferd command resume', description: 'Topic cmd/resume: infer again on a paused camera.' }),
  status: z
    .strictObject({ id: requestId.optional() })
    .meta({ title: 'edge-inferd command status', description: 'Topic cmd/status: the same JSON as GET /status.' }),
  'model/install': z
    .strictObject({
      id: requestId.optional(),
      url: z.string().min(1).max(4096).describe('https://, http:// or file:/// URL of the package archive (.tar or .tar.gz)'),
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits')
        .describe('sha256 of the archive file'),
      name: z.string().min(1).max(128).describe("must equal the manifest's name"),
      version: z.string().min(1).max(64).describe("must equal the manifest's version"),
      activate: z.boolean().default(true).describe('false: download, verify and self-check, keep it, do not switch'),
      stage: stageArg.optional(),
    })
    .meta({
      title: 'edge-inferd command model/install',
      description:
        'Topic cmd/model/install: download a model package, verify it (sha256, manifest), load and ' +
        'self-check it beside the running model, then switch to it. Answered when done.',
    }),
  'model/rollback': z.strictObject({ id: requestId.optional(), stage: stageArg.optional() }).meta({
    title: 'edge-inferd command model/rollback',
    description: 'Topic cmd/model/rollback: switch back to the package active before (or to model.path from the config).',
  }),
  'model/cancel': z.strictObject({ id: requestId.optional() }).meta({
    title: 'edge-inferd command model/cancel',
    description:
      'Topic cmd/model/cancel: stop the download or unpack of the install running now (its part file is removed; ' +
      'the install is answered DOWNLOAD_CANCELLED). NOTHING_TO_CANCEL when none is downloading.',
  }),
};
export type CommandName = keyof typeof commandRequestSchemas;
export const COMMAND_NAMES = Object.keys(commandRequestSchemas) as CommandName[];

// ---- Model rollout: <prefix>/<deviceId>/model/state (retained), /status `rollout`, model/* command results ----

export const rolloutPhase = z.enum([
  'idle',
  'downloading',
  'verifying',
  'loading',
  'selftest',
  'active',
  'staged',
  'failed',
  'interrupted',
  'rolledback',
]);
const rolloutRequest = z.strictObject({
  requestId: requestId.nullable(),
  command: z.enum(['model/install', 'model/rollback']),
  url: z.string().optional().describe('without credentials or query (a presigned token is a secret)'),
  sha256: z.string().optional(),
  name: z.string().optional(),
  version: z.string().optional(),
  activate: z.boolean().optional(),
});
export const rolloutStateSchema = z.strictObject({
  phase: rolloutPhase.describe('idle; an install in progress (downloading, verifying, loading, selftest); or how the last one ended'),
  request: rolloutRequest.nullable().describe('the command this phase belongs to'),
  bytes: count.optional().describe('downloaded so far'),
  totalBytes: count.nullable().optional().describe('announced size, null when the server did not say'),
  resumedFrom: count.optional().describe('bytes continued from an interrupted download'),
  selftest: z.strictObject({ mode: z.enum(['images', 'frames']), checked: count }).optional(),
  error: z
    .strictObject({ code: z.string(), message: z.string(), problems: z.array(z.string()).optional() })
    .optional()
    .describe('why the last install or rollback failed; the running model stayed'),
  current: modelRef.nullable().describe('the model running now'),
  packages: z
    .array(
      z.strictObject({
        dir: z.string(),
        name: z.string(),
        version: z.string(),
        sha256: z.string(),
        role: z.enum(['current', 'previous', 'staged']),
      }),
    )
    .describe('packages kept in the store (model.keep)'),
  changedAtMs: epochMs,
});
export const modelStateSchema = z.strictObject({ v, id, deviceId: name, ...stamp, ...rolloutStateSchema.shape }).meta({
  title: 'edge-inferd model state',
  description: 'Topic <prefix>/<deviceId>/model/state, retained: the model rollout (install progress, the last outcome, kept packages).',
});

// ---- The daemon status: GET /status and the `status` command's result ----

const ms = z.number().min(0);
const cameraVerdict = z.strictObject({
  verdict: z.enum(['progressing', 'waiting', 'stalled']),
  state: cameraStateName,
  idleMs: ms.describe('ms since the last result, or since the camera entered its state if later'),
  limitMs: ms,
  reason: z.string().optional(),
});
export const healthReportSchema = z
  .strictObject({
    ok: z.boolean().describe('false only when something is stalled (or the daemon is stopping)'),
    verdict: z.enum(['progressing', 'waiting', 'stalled']),
    reason: z.string().optional(),
    cameras: z.record(name, cameraVerdict),
    engineBuild: z.strictObject({ runningMs: ms, limitMs: ms, what: z.string() }).optional(),
  })
  .describe('the stall detector verdict: the same as GET /healthz and the systemd watchdog');
const errorInfo = z.strictObject({ code: z.string(), message: z.string(), atMs: epochMs });
const modelInfo = modelRef.extend({ task: z.enum(['classify', 'detect', 'segment', 'regress']), provider: z.string() });
const modelReload = z.strictObject({
  ok: z.boolean(),
  dir: z.string(),
  atMs: epochMs,
  ms,
  model: modelInfo.optional(),
  previous: modelInfo.optional(),
  error: z.strictObject({ code: z.string(), message: z.string(), problems: z.array(z.string()).optional() }).optional(),
});
const configReload = z.strictObject({
  atMs: epochMs,
  ok: z.boolean(),
  applied: z.array(z.string()).describe('`key: old -> new` for each key applied live'),
  restartRequired: z.array(z.string()).describe('changed keys that wait for a restart'),
  errors: z.array(z.string()),
  appliedKeys: z.array(z.string()),
  restartRequiredKeys: z.array(z.string()),
});
const channelStatus = z.strictObject({
  name,
  uri: z.string().describe('the camera URI, any password replaced by ***'),
  state: z.enum(['connecting', 'streaming', 'backoff', 'stopped']).describe('the capture state (the loop may be paused: see paused)'),
  reason: z.enum(['eos', 'stop']).optional(),
  lastError: errorInfo.optional(),
  lastFrameAtMs: epochMs.optional(),
  attempts: count.optional(),
  retryAtMs: epochMs.optional(),
  reconnects: count.optional(),
  received: count,
  dropped: count,
  errors: count,
  inferred: count,
  failures: count,
  lastResultAtMs: epochMs.optional(),
  lastInferenceError: z.string().optional(),
  paused: z.boolean(),
  resumedAtMs: epochMs.optional(),
  boxesDropped: z
    .strictObject({
      invalid: count.describe('boxes that were not a finite rectangle (NaN, infinite, negative size)'),
      capped: count.describe('boxes over the per-frame caps (4096 into NMS, 300 published) or past the manifest maxDetections'),
    })
    .optional()
    .describe('detectors: boxes not published since start (set once one was dropped)'),
  decide: z.strictObject({
    policy: policyName,
    inferred: count,
    published: count,
    heldBack: count,
    events: z.strictObject({ change: count, stable: count, cleared: count }),
    labels: z.record(z.string(), count),
  }),
  lastResult: resultSchema.nullable(),
  pipeline: z
    .strictObject({
      name: z.string(),
      tracks: count.describe('tracks started'),
      active: count.describe('tracks held now'),
      assessments: count,
      cleared: count,
      crops: count.describe('regions found and cropped'),
      qualitySkipped: z.strictObject({ small: count, blurred: count }).describe('crops the quality gate skipped'),
    })
    .optional()
    .describe('pipeline cameras: the tracker and aggregation counters since start'),
});
const modelStatus = modelInfo.extend({
  dir: z.string(),
  providerAttempts: z.array(z.strictObject({ provider: z.string(), ok: z.boolean(), error: z.string().optional(), ms })),
  engineCache: z
    .strictObject({
      key: z.string(),
      parts: z.strictObject({
        modelSha256: z.string(),
        provider: z.literal('tensorrt'),
        providerOptions: z.record(z.string(), z.unknown()),
        gpu: z.strictObject({ name: z.string(), driver: z.string(), tensorrt: z.string() }),
        ort: z.string(),
      }),
      dir: z.string(),
      ctxPath: z.string(),
      metaPath: z.string(),
      reuse: z.boolean(),
      reason: z.string().optional(),
    })
    .nullable()
    .describe('the TensorRT engine cache entry, when TensorRT was tried'),
  lastReload: modelReload.nullable(),
});

export const daemonStatusSchema = z
  .strictObject({
    v,
    deviceId: name,
    version: z.string(),
    state: z.enum(['starting', 'running', 'stopping', 'stopped']),
    uptimeSec: count,
    config: z.string().describe('the config file, or "built-in demo"'),
    model: modelStatus.nullable(),
    stages: z
      .array(modelStatus.extend({ pipeline: z.string(), stage: z.string() }))
      .optional()
      .describe('pipeline cameras: the model of each stage (each hot-swapped on its own)'),
    mqtt: z
      .strictObject({
        connected: z.boolean(),
        url: z.string(),
        clientId: z.string(),
        protocolVersion: z.union([z.literal(4), z.literal(5)]),
        tls: z.boolean(),
        sessionPresent: z.boolean().optional(),
        receiveMaximum: count.optional(),
        lastError: z.string().optional(),
        lastErrorCode: z.string().optional(),
        lastErrorAtMs: epochMs.optional(),
        connects: count,
        failedAttempts: count,
        outbox: z
          .strictObject({
            window: count,
            inflight: count,
            queued: count,
            published: count,
            acknowledged: count,
            rejected: count,
            qos0Dropped: count,
            journalFailures: count,
            lastJournalError: z.string().optional(),
            journalAccepting: z.boolean(),
            lost: count.describe('QoS >= 1 messages neither journaled nor acknowledged by the broker (journal write failed while offline)'),
          })
          .nullable(),
      })
      .nullable(),
    journal: z
      .strictObject({
        path: z.string(),
        mode: z
          .enum(['read-write', 'read-only', 'unavailable'])
          .describe(
            'read-only: the disk had no room to open the journal for writing (full, read-only): what it holds drains, new ' +
              'results are published unjournaled while the broker is connected, opening for writing is retried every 5 s; ' +
              'unavailable: not even readable (no file yet, or no room for its lock)',
          ),
        synchronous: z.enum(['normal', 'full']),
        rows: count,
        bytes: count,
        pending: count.describe(
          'messages not yet marked sent in the file: an acknowledgement is written with the next write, so one just acknowledged ' +
            'counts until then (what waits for the broker: mqtt.outbox.queued + inflight)',
        ),
        maxRows: count,
        maxBytes: count,
        retentionHours: z.number(),
        evicted: z.strictObject({ sent: count, pending: count }),
        expired: count,
        rejected: count,
        lastEvictionAtMs: epochMs.optional(),
        writable: z.boolean().describe('false while writes fail (disk full, I/O error): /readyz is 503 then'),
        writeFailures: count,
        lastWriteError: z.string().optional().describe('why writes fail, while they do'),
        lastWriteErrorAtMs: epochMs.optional().describe('when the current run of failures began'),
        corrupt: z
          .strictObject({ movedAside: count, lastMovedTo: z.string().optional(), lastError: z.string().optional() })
          .describe('unreadable journals found at start and moved aside (<path>.corrupt-<time>)'),
      })
      .nullable(),
    cameras: z.record(name, channelStatus),
    health: healthReportSchema,
    reload: configReload.nullable().describe('the last SIGHUP / reload command'),
    systemd: z.strictObject({ watchdogUsec: count.nullable(), watchdog: count, withheld: count, extended: count }),
    rollout: rolloutStateSchema.nullable().optional().describe('model rollout over MQTT (cmd/model/*)'),
    stageRollouts: z
      .record(z.string(), rolloutStateSchema)
      .optional()
      .describe('model rollout to pipeline stages, by "<pipeline>/<stage>" (cmd/model/* with stage)'),
    http: z
      .strictObject({ host: z.string(), port: z.int().min(1).max(65535) })
      .nullable()
      .optional()
      .describe('where the HTTP endpoint listens (the port the system picked when http.port is 0); null when off'),
    streams: z
      .strictObject({
        events: z
          .strictObject({
            clients: count.describe('GET /events streams open now'),
            accepted: count,
            refused: count.describe('refused with 503 at http.events.maxClients'),
            dropped: count.describe('closed by the daemon: the client took no data for a heartbeat interval'),
            resets: count.describe('reconnects that could not resume (past retention, or a bad Last-Event-ID)'),
          })
          .describe('GET /events (Server-Sent Events) since start'),
        preview: z
          .strictObject({
            clients: count.describe('GET /preview.mjpeg viewers now'),
            refused: count.describe('refused with 503 at http.preview.maxClients'),
            dropped: count.describe('closed by the daemon: the viewer took no frame for 10 s'),
            encodes: count.describe('JPEG encodings (one per frame and way of drawing it, whatever the viewers)'),
            sent: count.describe('frames sent, summed over viewers'),
          })
          .describe('GET /preview.mjpeg since start'),
        cameras: z
          .record(
            name,
            z.strictObject({
              events: count.describe('GET /events streams carrying this camera now (filtered to it, or to every camera)'),
              preview: count.describe('its preview viewers now'),
              previewDropped: count.describe('its preview viewers dropped since start'),
            }),
          )
          .describe('per started camera'),
      })
      .nullable()
      .optional()
      .describe(
        "the kiosk's live streams: what /metrics counts as edge_inferd_http_streams*, per endpoint and camera; null when HTTP is off",
      ),
  })
  .meta({
    title: 'edge-inferd daemon status',
    description: 'GET /status, and the result of the `status` command: everything the daemon knows about itself.',
  });

export const snapshotResultSchema = z.strictObject({
  camera: name,
  contentType: z.literal('image/jpeg'),
  encoding: z.literal('base64'),
  // Not z.base64(): its `format: "base64"` is no standard format, and strict validators refuse it.
  data: z
    .string()
    .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/)
    .meta({ contentEncoding: 'base64', contentMediaType: 'image/jpeg', description: 'the JPEG, base64' }),
  bytes: z.int().min(1).describe('JPEG size before base64'),
  width: z.int().min(1),
  height: z.int().min(1),
  frame: z.strictObject({ seq: count, capturedAt: iso, capturedAtMs: epochMs, name: z.string().optional() }),
});
export const reloadOutcomeSchema = z.strictObject({
  ok: z.boolean().describe('false: the new config was rejected and the running one stays'),
  changed: z.array(z.string()).describe('config paths whose new values were applied'),
  problems: z.array(z.string()).describe('why it was rejected, one `path: problem` line each'),
});
export const pauseResultSchema = z.strictObject({
  changed: z.array(name).describe('cameras this command paused or resumed'),
  paused: z.array(name).describe('every paused camera afterwards'),
});

const responseBase = { v, id, requestId: requestId.nullable(), deviceId: name, ...stamp };
export const commandResponseSchema = z
  .union([
    z.strictObject({ ...responseBase, command: z.literal('snapshot'), ok: z.literal(true), result: snapshotResultSchema }),
    z.strictObject({ ...responseBase, command: z.literal('reload'), ok: z.literal(true), result: reloadOutcomeSchema }),
    z.strictObject({ ...responseBase, command: z.enum(['pause', 'resume']), ok: z.literal(true), result: pauseResultSchema }),
    z.strictObject({ ...responseBase, command: z.literal('status'), ok: z.literal(true), result: daemonStatusSchema }),
    z.strictObject({
      ...responseBase,
      command: z.enum(['model/install', 'model/rollback', 'model/cancel']),
      ok: z.literal(true),
      result: rolloutStateSchema,
    }),
    z.strictObject({
      ...responseBase,
      command: z.string().describe('the topic level after cmd/, also for unknown commands'),
      ok: z.literal(false),
      error: z.strictObject({
        code: z.enum([
          'BAD_JSON',
          'BAD_REQUEST',
          'TOO_LARGE',
          'UNKNOWN_COMMAND',
          'UNKNOWN_CAMERA',
          'NO_FRAME',
          'SNAPSHOTS_OFF',
          'RELOAD_REJECTED',
          'UNAVAILABLE',
          'FAILED',
          'BUSY',
          'MODEL_REJECTED',
          'NOTHING_TO_CANCEL',
        ]),
        message: z.string(),
        problems: z.array(z.string()).optional().describe('one `path: problem` line each'),
      }),
    }),
  ])
  .meta({
    title: 'edge-inferd command response',
    description:
      'Topic <prefix>/<deviceId>/cmd/<name>/response: one per request, with its id as requestId (null when it could not be read).',
  });

// ---- Home Assistant MQTT discovery (homeassistant.enabled) ----

const haAvailability = z.strictObject({
  topic: z.string(),
  value_template: z.string(),
  payload_available: z.literal('online'),
  payload_not_available: z.literal('offline'),
});
const haBase = {
  name: z.string(),
  unique_id: z.string(),
  state_topic: z.string(),
  value_template: z.string(),
  availability: z.array(haAvailability).length(1),
  device: z.strictObject({
    identifiers: z.array(z.string()).min(1),
    name: z.string(),
    manufacturer: z.string(),
    model: z.string(),
    sw_version: z.string(),
  }),
  origin: z.strictObject({ name: z.literal('edge-inferd'), sw_version: z.string() }),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]),
};
export const haDiscoverySchema = z
  .union([
    z.strictObject({
      ...haBase,
      platform: z.literal('sensor'),
      icon: z.string(),
      json_attributes_topic: z.string(),
      json_attributes_template: z.string(),
    }),
    z
      .strictObject({
        ...haBase,
        platform: z.literal('sensor'),
        icon: z.string(),
        state_class: z.literal('measurement'),
      })
      .describe("a regress model's named value (<camera>_value_<name>, or <camera>_value_<region>_<name> for a crop stage)"),
    z.strictObject({
      ...haBase,
      platform: z.literal('binary_sensor'),
      device_class: z.literal('connectivity'),
      payload_on: z.literal('ON'),
      payload_off: z.literal('OFF'),
    }),
  ])
  .meta({
    title: 'edge-inferd Home Assistant discovery config',
    description:
      'Topic <haPrefix>/<sensor|binary_sensor>/<deviceId>/<camera>_<label|online|value_...>/config, retained; empty retained to remove.',
  });

export type StatusPayload = z.output<typeof statusSchema>;
export type DaemonStatus = z.output<typeof daemonStatusSchema>;
export type ResultPayload = z.output<typeof resultSchema>;
export type ClassifyResultPayload = Extract<ResultPayload, { task: 'classify' }>;
export type DetectResultPayload = Extract<ResultPayload, { task: 'detect' }>;
export type SegmentResultPayload = Extract<ResultPayload, { task: 'segment' }>;
export type RegressResultPayload = Extract<ResultPayload, { task: 'regress' }>;
export type EventPayload = z.output<typeof eventSchema>;
export type StatsPayload = z.output<typeof statsSchema>;
export type CommandResponse = z.output<typeof commandResponseSchema>;
export type ReloadOutcome = z.output<typeof reloadOutcomeSchema>;
export type SnapshotResult = z.output<typeof snapshotResultSchema>;
export type HaDiscoveryConfig = z.output<typeof haDiscoverySchema>;
export type CameraStateName = z.output<typeof cameraStateName>;
export type RolloutState = z.output<typeof rolloutStateSchema>;
export type ModelStatePayload = z.output<typeof modelStateSchema>;

/** The shipped schema files: schemas/<file>. */
export const PAYLOAD_SCHEMAS: Record<string, z.ZodType> = {
  'status.schema.json': statusSchema,
  'result.schema.json': resultSchema,
  'event.schema.json': eventSchema,
  'stats.schema.json': statsSchema,
  'daemon-status.schema.json': daemonStatusSchema,
  'model-state.schema.json': modelStateSchema,
  ...Object.fromEntries(COMMAND_NAMES.map((n) => [`command-${n.replace('/', '-')}.schema.json`, commandRequestSchemas[n]])),
  'command-response.schema.json': commandResponseSchema,
  'homeassistant-discovery.schema.json': haDiscoverySchema,
};

/** Schema ids are URNs: the files are shipped in the package (schemas/), not served from anywhere. */
export const SCHEMA_BASE_URL = 'urn:edge-inferd:schemas:v1:';

export function payloadJsonSchema(file: string): Record<string, unknown> {
  const schema = PAYLOAD_SCHEMAS[file];
  if (!schema) throw new Error(`no payload schema ${file}`);
  // Requests are read with defaults applied; what is on the wire is the input side.
  const io = file.startsWith('command-') && file !== 'command-response.schema.json' ? 'input' : 'output';
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io }) as Record<string, unknown>;
  const { $schema, ...rest } = json;
  return { $schema, $id: SCHEMA_BASE_URL + file, ...rest };
}
