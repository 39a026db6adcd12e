import { type Clock, systemClock } from '../../clock.js';
import { errorCode, errorMessage } from '../../errors.js';
import { parseHistoryQuery } from '../../journal/query.js';
import type { HistoryEntry, HistoryQuery } from '../../journal/store.js';
import { type Route, send } from '../server.js';

const PARAMS = ['camera', 'since', 'limit'];

/** What /results reads: the journal's history (src/journal/journal.ts `Journal` is one). */
export interface ResultsSource {
  history(query: HistoryQuery): HistoryEntry[];
}

/**
 * GET /results?camera=&since=&limit=: the newest journaled results (oldest first), the payloads
 * exactly as published. Bad parameters are a 400 naming each problem.
 */
/** `clock`: the wall time a `since` duration counts back from. */
export function resultsRoute(source: ResultsSource, clock: Clock = systemClock): Route {
  return {
    method: 'GET',
    path: '/results',
    handler: (_req, res, url) => {
      const problems: string[] = [];
      const raw: Record<string, string> = {};
      for (const [k, v] of url.searchParams) {
        if (!PARAMS.includes(k)) problems.push(`${k}: unknown parameter (valid: ${PARAMS.join(', ')})`);
        else if (k in raw) problems.push(`${k}: given more than once`);
        else raw[k] = v;
      }
      const parsed = parseHistoryQuery(raw, clock.now());
      if ('problems' in parsed) problems.push(...parsed.problems);
      if (problems.length || 'problems' in parsed) return send(res, 400, { error: problems.join('; '), problems });
      const { query, capped } = parsed;
      let entries: HistoryEntry[];
      try {
        entries = source.history({ ...query, kind: 'result' });
      } catch (err) {
        // A journal whose disk has no room and that cannot be read either (journal.ts): say so, it is not our bug.
        if (errorCode(err) !== 'JOURNAL_UNAVAILABLE') throw err;
        return send(res, 503, { error: errorMessage(err), code: 'JOURNAL_UNAVAILABLE' });
      }
      send(res, 200, {
        camera: query.camera ?? null,
        since: query.sinceMs !== undefined ? new Date(query.sinceMs).toISOString() : null,
        limit: query.limit,
        ...(capped ? { limitCapped: true } : {}),
        count: entries.length,
        results: entries.map((e) => JSON.parse(e.payload) as unknown),
      });
    },
  };
}
