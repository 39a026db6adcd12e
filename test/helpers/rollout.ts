import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { GraphBuilder, int } from '../../scripts/onnx/builder.js';
import { needTool } from './tools.js';

/**
 * Model packages and archives for the rollout tests. The model is a "dominant channel" classifier
 * built here with the ONNX builder: the mean of R, G and B over an 8x8 input are its three logits,
 * so a solid red image is class 0, green 1, blue 2, whatever the labels are called. Renaming the
 * labels makes a package whose results are told apart from the demo model's (and from another
 * version); permuting them makes one whose self-check images give the wrong answers.
 */

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function channelClassifier(): Uint8Array {
  const g = new GraphBuilder('dominant_channel');
  const x = g.input('images', [1, 3, 8, 8]);
  g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: int(1) }, 'logits');
  g.output('logits', [1, 3]);
  return g.build();
}

export const RGB: Record<'red' | 'green' | 'blue', [number, number, number]> = {
  red: [220, 20, 20],
  green: [20, 220, 20],
  blue: [20, 20, 220],
};

export function solidPng(rgb: [number, number, number], size = 16): Promise<Buffer> {
  return sharp({ create: { width: size, height: size, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();
}

export interface PackageSpec {
  name: string;
  version: string;
  /** Labels of classes 0 (red), 1 (green), 2 (blue). */
  labels: [string, string, string];
  /** selftest/<label>/<colour>.png: each colour's image filed under the label given. */
  selftest?: { label: string; colour: keyof typeof RGB }[];
  /** Overwrites manifest.yaml's text. */
  manifest?: (text: string) => string;
}

/** Writes a package folder; returns it. */
export async function writePackage(dir: string, spec: PackageSpec): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const model = channelClassifier();
  writeFileSync(join(dir, 'model.onnx'), model);
  const text = `name: ${spec.name}\nversion: ${spec.version}\ntask: classify\nsha256: ${sha256(model)}\ninput: {name: images, width: 8, height: 8}\nclassify: {outputs: logits, topK: 3}\nlabels: [${spec.labels.join(', ')}]\n`;
  writeFileSync(join(dir, 'manifest.yaml'), spec.manifest ? spec.manifest(text) : text);
  for (const t of spec.selftest ?? []) {
    mkdirSync(join(dir, 'selftest', t.label), { recursive: true });
    writeFileSync(join(dir, 'selftest', t.label, `${t.colour}.png`), await solidPng(RGB[t.colour]));
  }
  return dir;
}

/** A .tar.gz (or .tar) of the folder's contents made by the system's tar, as an operator would. */
export function tarFolder(dir: string, out: string, gzip = true): Buffer {
  const tar = needTool('tar', 'tar') ?? 'tar';
  execFileSync(tar, [gzip ? '-czf' : '-cf', out, '-C', dir, '.']);
  return readFileSync(out);
}

export interface RawEntry {
  name: string;
  /** '0' file, '2' symlink, '5' folder. */
  type?: '0' | '2' | '5';
  body?: Uint8Array;
  link?: string;
}

/**
 * One ustar header block: `size` is what it declares (the body, if any, follows it, padded to
 * 512 bytes). `type` '0' file, '2' symlink, '5' folder, 'x' pax, 'L' long name...
 */
export function tarHeader(name: string, type: string, size: number, opts: { mode?: string; link?: string } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(`${opts.mode ?? '0000644'}\0`, 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  if (opts.link) h.write(opts.link, 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

/** A header and its body, padded to a whole block. */
export function tarEntry(name: string, type: string, body: Uint8Array, link?: string): Buffer {
  return Buffer.concat([tarHeader(name, type, body.length, { link }), body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

/** A ustar archive written byte by byte: for entries no honest tar makes (`..`, absolute paths, links). */
export function rawTar(entries: RawEntry[], gzip = true): Buffer {
  const blocks = entries.map((e) => tarEntry(e.name, e.type ?? '0', e.body ?? new Uint8Array(), e.link));
  const tar = Buffer.concat([...blocks, Buffer.alloc(1024)]);
  return gzip ? gzipSync(tar) : tar;
}
