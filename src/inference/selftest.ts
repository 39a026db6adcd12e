import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonError, errorMessage } from '../errors.js';
import type { InferenceEngine } from './engine.js';
import { decodeImage } from './image.js';
import { type Inference, primaryOf } from './types.js';

/**
 * A package's self-check before it takes over: `selftest/<label>/<image>` (PNG, JPEG or WebP), each
 * image's primary answer (the top class, the best box, the largest segment) must be the folder's
 * label. A package without `selftest/` must answer `frames` mid-grey frames of its input size
 * without an error. Any miss refuses the package, naming the image and what it was taken for.
 */

export const SELFTEST_MAX_IMAGES = 200;
const IMAGE_RE = /\.(png|jpe?g|webp)$/i;

export interface SelfTestReport {
  mode: 'images' | 'frames';
  checked: number;
}

export class SelfTestError extends DaemonError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      'MODEL_SELFTEST',
      `self-check failed: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`,
    );
    this.name = 'SelfTestError';
    this.problems = problems;
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function selfTest(
  engine: InferenceEngine,
  dir: string,
  opts: { frames: number; width: number; height: number },
): Promise<SelfTestReport> {
  const root = join(dir, 'selftest');
  if (!(await isDir(root))) {
    const { width, height } = opts;
    for (let i = 0; i < opts.frames; i++) {
      const frame = {
        camera: 'selftest',
        seq: i,
        width,
        height,
        stride: width * 3,
        format: 'RGB' as const,
        data: new Uint8Array(width * height * 3).fill(114),
        capturedAtMs: Date.now(),
      };
      await engine.infer(frame).catch((err: unknown) => {
        throw new SelfTestError([`frame ${i + 1} of ${opts.frames}: ${errorMessage(err)}`]);
      });
    }
    return { mode: 'frames', checked: opts.frames };
  }
  const cases: { label: string; file: string }[] = [];
  for (const label of (await readdir(root)).sort()) {
    if (!(await isDir(join(root, label)))) continue;
    for (const f of (await readdir(join(root, label))).sort())
      if (IMAGE_RE.test(f)) cases.push({ label, file: join('selftest', label, f) });
  }
  if (!cases.length) throw new SelfTestError(['selftest/ holds no <label>/<image> (PNG, JPEG or WebP)']);
  if (cases.length > SELFTEST_MAX_IMAGES)
    throw new SelfTestError([`selftest/ holds ${cases.length} images, more than ${SELFTEST_MAX_IMAGES}`]);
  const problems: string[] = [];
  let seq = 0;
  for (const c of cases) {
    let inf: Inference;
    try {
      const frame = await decodeImage(await readFile(join(dir, c.file)), { camera: 'selftest', seq: seq++, name: c.file });
      inf = await engine.infer(frame);
    } catch (err) {
      problems.push(`${c.file}: ${errorMessage(err)}`);
      continue;
    }
    const got = primaryOf(inf)?.label;
    if (got !== c.label)
      problems.push(`${c.file}: expected "${c.label}", the model answered ${got === undefined ? 'nothing' : `"${got}"`}`);
  }
  if (problems.length) throw new SelfTestError(problems);
  return { mode: 'images', checked: cases.length };
}
