// Types for scripts/layers.mjs (plain JS so that .dependency-cruiser.mjs can load it without a build).
export interface Layer {
  layer: number;
  /** Repository paths; one ending in "/" is a folder with everything in it. */
  modules: string[];
}
export interface ForbiddenRule {
  name: string;
  comment: string;
  severity: 'error';
  from: { path: string };
  to: { path: string };
}
export function readLayers(markdown?: string): Layer[];
export function pattern(modules: readonly string[]): string;
export function layerOf(layers: readonly Layer[], path: string): number | undefined;
export function layerRules(layers: readonly Layer[]): ForbiddenRule[];
