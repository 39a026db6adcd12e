import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** Process tests spawn the built daemon: build it once, so `npx vitest` alone is never stale. */
export default function setup(): void {
  // npm run mutate runs unit and integration tests only (they import src/, not dist/), once per mutant.
  if (process.env.SKIP_DIST_BUILD === '1') return;
  const root = resolve(import.meta.dirname, '..');
  execFileSync(process.execPath, [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
