import { describe, expect, it } from 'vitest';
import { inputPixels } from '../../src/inference/explain.js';
import type { InputSpec } from '../../src/inference/manifest.js';

/**
 * The overlay shows the input as the model saw it: inputPixels undoes scale, mean and std. Since
 * input.channels and one-value mean/std exist, both must come back right (they were NaN -> 0).
 */
const base: InputSpec = {
  name: 'x',
  layout: 'NCHW',
  width: 2,
  height: 1,
  colour: 'RGB',
  dtype: 'float32',
  scale: 1 / 255,
  mean: [0.5],
  std: [0.25],
  resize: 'stretch',
} as InputSpec;

describe('inputPixels', () => {
  it('one mean and std for every channel: each channel restored', () => {
    // Pixels (100, 150, 200) and (0, 255, 51) in NCHW, as (p / 255 - 0.5) / 0.25.
    const px = [
      [100, 0],
      [150, 255],
      [200, 51],
    ];
    const t = Float32Array.from(px.flat(), (p) => (p / 255 - 0.5) / 0.25);
    expect([...inputPixels(t, base)]).toEqual([100, 150, 200, 0, 255, 51]);
  });

  it('a one-channel (grey) input comes back grey in all three', () => {
    const t = Float32Array.from([90, 200], (p) => (p / 255 - 0.5) / 0.25);
    expect([...inputPixels(t, { ...base, channels: 1 })]).toEqual([90, 90, 90, 200, 200, 200]);
  });
});
