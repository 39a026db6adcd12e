import type { Classification } from './types.js';

/** Classification postprocessing: optional softmax, then the k best labels. */

export function softmax(x: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > max) max = x[i];
  const out = new Float32Array(x.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += out[i] = Math.exp(x[i] - max);
  for (let i = 0; i < x.length; i++) out[i] /= sum;
  return out;
}

export function topK(scores: ArrayLike<number>, labels: readonly string[], k: number): Classification[] {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  idx.sort((a, b) => scores[b] - scores[a] || a - b);
  return idx.slice(0, Math.min(k, scores.length)).map((i) => ({ index: i, label: labels[i] ?? `class_${i}`, score: scores[i] }));
}

export function classify(output: ArrayLike<number>, labels: readonly string[], opts: { outputs: 'logits' | 'probabilities'; topK: number }): Classification[] {
  return topK(opts.outputs === 'logits' ? softmax(output) : output, labels, opts.topK);
}
