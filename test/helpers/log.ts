import { createLogger, type Logger } from '../../src/log.js';

/** A real pino logger whose JSON lines the test can read. */
export function captureLog(level = 'debug'): { log: Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const log = createLogger({
    level,
    format: 'json',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, any>) },
  });
  return { log, lines };
}
