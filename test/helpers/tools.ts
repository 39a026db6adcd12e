import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Finds a system tool a test needs. In CI (CI=true) a missing tool is a failure: nothing may skip
 * there. On a developer machine the test skips, loudly, naming the package to install.
 */
export const IN_CI = process.env.CI === 'true';

export function findTool(name: string, candidates: string[] = []): string | undefined {
  for (const c of candidates) if (existsSync(c)) return c;
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Returns the tool's path, or undefined after warning (developer machine). Throws in CI. */
export function needTool(name: string, aptPackage: string, candidates: string[] = []): string | undefined {
  const path = findTool(name, candidates);
  if (path) return path;
  const msg = `${name} not found: apt-get install ${aptPackage}`;
  if (IN_CI) throw new Error(`${msg} (CI=true: tests that need it must not skip)`);
  console.warn(`\n*** SKIPPING: ${msg} ***\n`);
  return undefined;
}

/**
 * Whether tests that need a capability (the capture addon, sd_notify) should run: where it is
 * there, and always in CI, where they must then fail rather than skip (pair this with a test that
 * asserts `available.ok`). Elsewhere the skip is announced loudly, naming the reason.
 */
export function runOrSkipLoudly(what: string, available: { ok: true } | { ok: false; reason: string }): boolean {
  if (available.ok || IN_CI) return true;
  console.warn(`\n*** SKIPPING ${what} (not CI): ${available.reason} ***\n`);
  return false;
}
