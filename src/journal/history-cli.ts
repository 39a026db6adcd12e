import { existsSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import { termSafe } from '../terminal-text.js';
import { parseHistoryQuery } from './query.js';
import { type HistoryEntry, openReadOnly, queryHistory } from './store.js';

/**
 * `edge-inferd history`: recent results straight from the journal file, read-only, so it works
 * while the daemon runs (WAL readers do not block the writer) and after it died.
 */

export interface HistoryArgs {
  journalPath: string;
  camera?: string;
  since?: string;
  limit?: string;
  json: boolean;
  /** Events (change, stable, cleared, assessment) instead of results. */
  events?: boolean;
}

const CLI_DEFAULT_LIMIT = '20';
const CLI_MAX_LIMIT = 100_000;

export function runHistory(a: HistoryArgs, out: (s: string) => void, err: (s: string) => void, nowMs = Date.now()): number {
  const parsed = parseHistoryQuery({ camera: a.camera, since: a.since, limit: a.limit ?? CLI_DEFAULT_LIMIT }, nowMs, CLI_MAX_LIMIT);
  if ('problems' in parsed) {
    err(parsed.problems.map((p) => `edge-inferd history: --${p}\n`).join(''));
    return 2;
  }
  if (!existsSync(a.journalPath)) {
    err(
      `edge-inferd history: no journal at ${a.journalPath}; give --journal FILE (under systemd it is ` +
        `/var/lib/edge-inferd/journal.sqlite: STATE_DIRECTORY) or the daemon's --config\n`,
    );
    return 1;
  }
  let entries: HistoryEntry[];
  try {
    const db = openReadOnly(a.journalPath);
    try {
      entries = queryHistory(db, { ...parsed.query, kind: a.events ? 'event' : 'result' });
    } finally {
      db.close();
    }
  } catch (e) {
    err(`edge-inferd history: cannot read ${a.journalPath}: ${errorMessage(e)}\n`);
    return 1;
  }
  if (a.json) {
    for (const e of entries) out(`${e.payload}\n`);
    return 0;
  }
  out(formatTable(entries, a.events === true));
  return 0;
}

/** An assessment in one cell: each region's label and score (regress: its values; multi-label: the labels on), or "not detected". */
function regionsCell(p: Record<string, unknown>): string {
  type Region = { notDetected?: boolean; label?: string; score?: number; on?: string[]; values?: Record<string, number> };
  const regions = p.regions as Record<string, Region> | undefined;
  if (!regions) return '';
  const answer = (r: Region) =>
    r.values
      ? Object.entries(r.values)
          .map(([k, v]) => `${k}:${+v.toPrecision(4)}`)
          .join(',')
      : r.on
        ? `[${r.on.join(',')}]`
        : `${r.label} ${r.score?.toFixed(2)}`;
  return Object.entries(regions)
    .map(([name, r]) => `${name}=${r.notDetected ? 'not detected' : answer(r)}`)
    .join(' ');
}

function formatTable(entries: HistoryEntry[], events: boolean): string {
  const rows = events
    ? [['TIME', 'CAMERA', 'SEQ', 'TYPE', 'TRACK', 'LABEL', 'SCORE', 'REGIONS', 'STATE', 'ID']]
    : [['TIME', 'CAMERA', 'SEQ', 'LABEL', 'SCORE', 'STATE', 'ID']];
  for (const e of entries) {
    let p: Record<string, unknown> = {};
    try {
      p = JSON.parse(e.payload) as Record<string, unknown>;
    } catch {
      // shown with what the row itself says
    }
    const score = typeof p.score === 'number' ? p.score.toFixed(3) : '-';
    const time = new Date(e.createdMs).toISOString();
    if (events)
      rows.push([
        time,
        e.camera || '-',
        String(p.seq ?? '-'),
        String(p.type ?? '-'),
        String(p.track ?? '-'),
        String(p.label ?? '-'),
        score,
        regionsCell(p) || '-',
        e.state,
        String(p.id ?? '-'),
      ]);
    else rows.push([time, e.camera || '-', String(p.seq ?? '-'), String(p.label ?? '-'), score, e.state, String(p.id ?? '-')]);
  }
  // Labels, regions and ids come from models and commands: safe for the terminal and of bounded width.
  for (const r of rows.slice(1)) for (const [i, c] of r.entries()) r[i] = termSafe(c, i === r.length - 1 ? 64 : 48);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
  if (entries.length === 0) lines.push(events ? '(no events)' : '(no results)');
  return lines.join('\n') + '\n';
}
