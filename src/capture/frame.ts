/** Plain data that leaves the capture stage. */

export type PixelFormat = 'RGB' | 'BGR' | 'RGBA' | 'BGRA' | 'GRAY8';

export interface Frame {
  camera: string;
  /** Per-camera frame counter from the source (gaps mean dropped frames). */
  seq: number;
  width: number;
  height: number;
  /** Bytes per row; >= width * channels (GStreamer pads RGB rows to 4 bytes). */
  stride: number;
  format: PixelFormat;
  /**
   * The pixels. A camera may reuse this memory for its next frame: it is valid until the next
   * read() on the same camera settles. Copy it (`data.slice()`) to keep a frame longer.
   */
  data: Uint8Array;
  /** Wall-clock capture time, epoch ms. */
  capturedAtMs: number;
  /** What the frame shows, when the source knows (an image file name). */
  name?: string;
  /** The frame's time in a recording (a video file given to `edge-inferd infer`), ms from its start. */
  timeMs?: number;
  /**
   * Set when the capture pipeline scaled the camera's frames (to the model's input): the camera's
   * own size. Results are in these coordinates (full-resolution pixels), whatever size `data` has.
   */
  sourceWidth?: number;
  sourceHeight?: number;
  /**
   * The full-resolution frame of the same instant, while the camera was asked for it
   * (`Camera.wantFull`): snapshots, crops for a second model. Valid as long as `data`.
   */
  full?: Frame;
}

export const channelsOf = (f: PixelFormat): number => (f === 'GRAY8' ? 1 : f === 'RGB' || f === 'BGR' ? 3 : 4);

export type CameraState = 'connecting' | 'streaming' | 'backoff' | 'stopped';

export interface CameraStats {
  /** Frames the source produced. */
  received: number;
  /** Frames replaced by a newer one before anybody read them (latest frame wins). */
  dropped: number;
  errors: number;
}

export interface CameraStatus extends CameraStats {
  name: string;
  /** The URI with any password replaced by ***. */
  uri: string;
  state: CameraState;
  /** Why a `stopped` camera stopped: `eos` (a file that does not loop has ended) or `stop` (stop() was called). */
  reason?: 'eos' | 'stop';
  lastError?: { code: string; message: string; atMs: number };
  lastFrameAtMs?: number;
  /** Failed attempts since the camera last delivered a frame; the backoff grows with it. */
  attempts?: number;
  /** While in `backoff`: when the next attempt is due, epoch ms. */
  retryAtMs?: number;
  /** Times the camera came back after a failure, without a daemon restart. */
  reconnects?: number;
}

/** A frame source. `read()` resolves with the newest frame not yet read, waiting if there is none. */
export interface Camera {
  readonly name: string;
  start(): Promise<void>;
  read(): Promise<Frame>;
  stop(): Promise<void>;
  status(): CameraStatus;
  /** Ask for (or stop asking for) `Frame.full` on the frames read from now on; sources without a scaled pipeline ignore it. */
  wantFull?(on: boolean): void;
}
