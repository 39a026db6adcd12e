import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eyesDemoDir, trayDemoDir } from '../../src/paths.js';

/**
 * The known answers the demo generators write beside their sample frames (samples/answers.json):
 * what the tests compare the demos' results with. Read once per test file.
 */

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface EyeAnswer {
  x: number;
  y: number;
  class: string;
  covered: boolean;
}

export interface FaceAnswer {
  subject: number;
  box: Box;
  leftEye: EyeAnswer;
  rightEye: EyeAnswer;
}

export interface ItemAnswer {
  label: string;
  box: Box;
}

const read = <T>(dir: string): { frames: T[] } => JSON.parse(readFileSync(join(dir, 'samples', 'answers.json'), 'utf8')) as { frames: T[] };

/** The eyes demo's sample frames: each file's faces, their boxes and eyes. */
export const eyesAnswers = (): { file: string; faces: FaceAnswer[] }[] => read<{ file: string; faces: FaceAnswer[] }>(eyesDemoDir).frames;

/** The tray demo's sample frames: each file's items, their materials and boxes. */
export const trayAnswers = (): { file: string; items: ItemAnswer[] }[] => read<{ file: string; items: ItemAnswer[] }>(trayDemoDir).frames;
