import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
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
/** The eyes demo (`run --demo eyes`): face detector, eye classifier, sample frames. */
export const eyesDemoDir = join(packageRoot, 'models', 'demo-eyes');
/** The tray demo (`run --demo tray`): item detector and sample trays; the materials come from the demo model. */
export const trayDemoDir = join(packageRoot, 'models', 'demo-tray');

/**
 * Where the journal lives when journal.path is not set: systemd's StateDirectory= (it exports
 * STATE_DIRECTORY, possibly a ':'-separated list; the first is ours), else the XDG state folder of
 * the user running the daemon.
 */
export function defaultJournalPath(env: NodeJS.ProcessEnv = process.env): string {
  const stateDir = env.STATE_DIRECTORY?.split(':')[0];
  if (stateDir) return join(stateDir, 'journal.sqlite');
  const xdg = env.XDG_STATE_HOME?.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(xdg, 'edge-inferd', 'journal.sqlite');
}
