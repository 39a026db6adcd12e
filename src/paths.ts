import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root, found by walking up from this file: works from src/ (tests) and dist/src/ (built). */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('edge-inferd: cannot find package.json above ' + import.meta.url);
    dir = parent;
  }
  return dir;
})();

export const demoModelDir = join(packageRoot, 'models', 'demo');
export const demoSamplesDir = join(demoModelDir, 'samples');
