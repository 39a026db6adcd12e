// What every generator of committed files (the demo models, the eyes demo, the test fixtures)
// shares: write only the files whose content changed, so that regenerating leaves git clean, and
// run main() only when the script is the one invoked (tests import the generators).
import { realpathSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

export interface GeneratedFile {
  /** Path relative to the output folder. */
  rel: string;
  bytes: Uint8Array;
  /** For a PNG: its RGB pixels, so that a file that decodes to the same pixels counts as unchanged. */
  pixels?: Uint8Array;
  width?: number;
  height?: number;
}

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

async function readOrNull(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * PNGs count as unchanged when they decode to the same pixels: another zlib build may compress
 * differently, and that must not churn the committed samples.
 */
async function samePng(existing: Buffer, f: GeneratedFile): Promise<boolean> {
  try {
    const { data, info } = await sharp(existing).raw().toBuffer({ resolveWithObject: true });
    return info.width === f.width && info.height === f.height && info.channels === 3 && sameBytes(data, f.pixels!);
  } catch {
    return false;
  }
}

/** Writes the files whose content differs from what is on disk; returns the ones written. */
export async function writeChanged(outDir: string, files: readonly GeneratedFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const f of files) {
    const file = path.join(outDir, f.rel);
    const existing = await readOrNull(file);
    if (existing && (sameBytes(existing, f.bytes) || (f.pixels && (await samePng(existing, f))))) continue;
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, f.bytes);
    written.push(f.rel);
  }
  return written;
}

/** True when the module at `metaUrl` is the script node was asked to run. */
export function invokedDirectly(metaUrl: string): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false; // imported from somewhere without a file path (e.g. a test runner)
  }
}

/** The command-line entry of a generator: `npx tsx scripts/<generator>.ts [outDir]`. */
export function runGenerator(
  metaUrl: string,
  defaultOutDir: string,
  make: (outDir: string) => Promise<{ files: string[]; written: string[] }>,
): void {
  if (!invokedDirectly(metaUrl)) return;
  const outDir = path.resolve(process.argv[2] ?? defaultOutDir);
  make(outDir).then(
    ({ files, written }) => {
      for (const f of written) console.log(`wrote ${path.join(outDir, f)}`);
      console.log(`${written.length} written, ${files.length - written.length} unchanged in ${outDir}`);
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
