import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the journal lives when journal.path is not set: systemd's StateDirectory= (it exports
 * STATE_DIRECTORY, possibly a ':'-separated list; the first is ours), else the XDG state folder of
 * the user running the daemon.
 */
export function defaultJournalPath(env: NodeJS.ProcessEnv = process.env): string {
  const stateDir = env.STATE_DIRECTORY?.split(':')[0];
  if (stateDir) return join(stateDir, 'journal.sqlite');
  const xdg = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(xdg, 'edge-inferd', 'journal.sqlite');
}
