import type { CameraConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Camera, CameraState } from './frame.js';
import type { Clock } from '../clock.js';
import { GstCamera } from './gst-camera.js';
import { ImagesCamera } from './images.js';
import { cameraSource, type ScaleTarget } from './uri.js';

export interface CameraDeps {
  /** Where the camera reports failures and recoveries. */
  log?: Logger;
  clock?: Clock;
  random?: () => number;
  /** Every state change of the camera (connecting, streaming, backoff, stopped). */
  onState?: (state: CameraState) => void;
  /** What GStreamer should scale frames to (the model's input), asked at each open. */
  target?: () => ScaleTarget | undefined;
}

/**
 * Makes the Camera for a configured URI: images:// stays in TypeScript (sharp), every other kind is
 * a GStreamer pipeline in the native addon. Throws CAMERA_URI naming the config key for a bad URI
 * (config loading already reports those, so a daemon never gets here with one).
 */
export function createCamera(name: string, cfg: CameraConfig, deps: CameraDeps = {}): Camera {
  const src = cameraSource(name, cfg);
  if (src.kind === 'images') return new ImagesCamera({ name, dir: src.dir, fps: src.fps, clock: deps.clock, onState: deps.onState });
  return new GstCamera({
    name,
    pipeline: src.pipeline,
    split: src.split,
    display: src.display,
    onEos: src.onEos,
    hint: src.hint,
    reconnect: cfg.reconnect,
    ...deps,
  });
}
