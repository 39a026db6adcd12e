import { NAME_RE } from '../config/schema.js';
import type { HistoryQuery } from './store.js';

/**
 * The history query as a person types it (`/results?camera=tray&since=15m&limit=50`,
 * `edge-inferd history --since 2024-05-01T08:00:00Z`), checked and turned into a HistoryQuery.
 * Every problem is reported at once, `name: what is wrong (got X)`.
 */

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** `since` as epoch ms: an ISO 8601 time, or a duration back from now (30s, 15m, 2h, 7d, 1w). */
export function parseSince(text: string, nowMs: number): number | string {
  const t = text.trim();
  const d = DURATION_RE.exec(t);
  if (d) return nowMs - Number(d[1]) * UNIT_MS[d[2]];
  if (ISO_RE.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return ms;
  }
  return `since: expected an ISO 8601 time (2024-05-01T08:00:00Z) or a duration back from now (30s, 15m, 2h, 7d) (got ${JSON.stringify(text)})`;
}

export interface RawHistoryQuery {
  camera?: string;
  since?: string;
  limit?: string;
}

export interface ParsedHistoryQuery {
  query: HistoryQuery;
  /** The limit asked for was above the cap and was lowered to it. */
  capped: boolean;
}

export function parseHistoryQuery(raw: RawHistoryQuery, nowMs: number, maxLimit = MAX_LIMIT): ParsedHistoryQuery | { problems: string[] } {
  const problems: string[] = [];
  const query: HistoryQuery = { limit: DEFAULT_LIMIT };
  let capped = false;
  if (raw.camera !== undefined) {
    if (NAME_RE.test(raw.camera)) query.camera = raw.camera;
    else problems.push(`camera: must be a camera name (letters, digits, "_" or "-") (got ${JSON.stringify(raw.camera)})`);
  }
  if (raw.since !== undefined) {
    const since = parseSince(raw.since, nowMs);
    if (typeof since === 'number') query.sinceMs = since;
    else problems.push(since);
  }
  if (raw.limit !== undefined) {
    // Any run of digits is a whole number: one too large to hold exactly is still above the cap.
    const n = /^\d+$/.test(raw.limit.trim()) ? Number(raw.limit) : NaN;
    if (Number.isNaN(n) || n < 1) problems.push(`limit: must be a whole number >= 1 (got ${JSON.stringify(raw.limit)})`);
    else {
      capped = n > maxLimit;
      query.limit = Math.min(n, maxLimit);
    }
  }
  return problems.length ? { problems } : { query, capped };
}
