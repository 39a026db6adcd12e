import { LABELS, type Label, PROTOTYPES } from '../../scripts/make-demo-model.js';

/**
 * The demo model's answers, taken from the script that generates it (scripts/make-demo-model.ts)
 * rather than copied into tests: a solid frame of a label's prototype colour is classified as
 * that label, and a label's class index is its place in LABELS.
 */

/** The prototype colour of `label` as RGB bytes (the same rounding as the rendered samples). */
export function prototypeRgb(label: Label): [number, number, number] {
  const [r, g, b] = PROTOTYPES[label].map((c) => Math.round(c * 255));
  return [r, g, b];
}

/** The class index of `label` in the demo model's output. */
export function labelIndex(label: Label): number {
  return LABELS.indexOf(label);
}
