import { DaemonError } from '../errors.js';
import type { CameraConfig } from '../config/schema.js';
import type { Camera } from './frame.js';
import { ImagesCamera } from './images.js';

/** Makes the Camera for a configured URI. Camera kinds beyond images:// arrive with the native addon. */
export function createCamera(name: string, cfg: CameraConfig): Camera {
  if (cfg.uri.startsWith('images://')) {
    return new ImagesCamera({ name, dir: cfg.uri.slice('images://'.length), fps: cfg.fps ?? 2 });
  }
  const scheme = cfg.uri.split(':')[0];
  throw new DaemonError('CAMERA_URI', `cameras.${name}.uri: unsupported scheme "${scheme}:" (supported: images://)`);
}
