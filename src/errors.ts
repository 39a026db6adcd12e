/** Errors that cross component boundaries carry a stable `code` (for logs, /status and tests) and a `cause`. */
export class DaemonError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DaemonError';
    this.code = code;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A value an earlier step guarantees (an output the model check found at load, a map entry made at
 * construction). Missing means a bug in edge-inferd, reported with what was missing rather than as
 * "cannot read properties of undefined" further on.
 */
export function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new DaemonError('INTERNAL', `${what} is missing (a bug in edge-inferd)`);
  return value;
}
