import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.js';

/**
 * Config files for the config tests, each written to a fresh file in one temporary folder, and
 * what the real loader says about them.
 */
export function configFiles(prefix: string): {
  dir: string;
  /** Writes `text` to a new YAML file; its path. */
  file(text: string): string;
  /** The problems loadConfig reports for `text` (the file's path written as FILE); throws if the config is accepted. */
  problems(text: string, env?: NodeJS.ProcessEnv): string[];
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  const file = (text: string): string => {
    const p = join(dir, `c${n++}.yaml`);
    writeFileSync(p, text);
    return p;
  };
  const problems = (text: string, env: NodeJS.ProcessEnv = {}): string[] => {
    const f = file(text);
    try {
      loadConfig({ file: f, env });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => p.replaceAll(f, 'FILE'));
      throw err;
    }
    throw new Error('config was accepted');
  };
  return { dir, file, problems };
}
