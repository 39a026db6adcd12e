/**
 * ONNX Runtime's own telemetry off unless the operator opted in. Since 1.29 ORT on Linux sends
 * usage events (process, session, model file and graph names, producer, metadata) to Microsoft's
 * collector, with a persistent device id and a queue under
 * `~/.cache/Microsoft/DeveloperTools/.onnxruntime/`. ORT reads `ORT_DISABLE_TELEMETRY` from the
 * process environment once, when its environment is created (the first session of the process), so
 * this module must run before any session, in the main thread: a worker thread's `process.env` is
 * a copy that native code never sees, and the worker shares the main thread's real environment.
 *
 * Every module that imports onnxruntime-node imports this one first, and so do the CLI and the
 * inference worker's spawner: whichever loads first, it runs before ORT can start its telemetry.
 * Opting in is ORT's own switch, set before the daemon starts: `ORT_DISABLE_TELEMETRY=0` (in the
 * environment, or in a systemd drop-in). Any value already set is left as it is.
 */

export const ORT_TELEMETRY_VAR = 'ORT_DISABLE_TELEMETRY';

/** Sets ORT_DISABLE_TELEMETRY=1 unless a value is already there; returns whether telemetry stays off. */
export function disableOrtTelemetry(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!env[ORT_TELEMETRY_VAR]) env[ORT_TELEMETRY_VAR] = '1';
  return ortTelemetryOff(env);
}

/** ORT 1.30's reading of the variable: `1`, `true`, `yes`, `on` (any case) turn it off; anything else (`0`) leaves it on. */
export function ortTelemetryOff(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes|on)$/i.test(env[ORT_TELEMETRY_VAR] ?? '');
}

disableOrtTelemetry();
