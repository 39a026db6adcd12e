import { expect } from 'vitest';
import type { Received } from './mqtt.js';

/** Checks on what a subscriber received: per-camera seq lists, completeness and order, polling. */

export function seqsByCamera(msgs: Received[], suffix = '/result'): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const m of msgs) {
    if (!m.topic.endsWith(suffix)) continue;
    const list = out.get(m.json.camera) ?? [];
    list.push(m.json.seq);
    out.set(m.json.camera, list);
  }
  return out;
}

/**
 * Every seq from..to arrived, in order: the list never moves forward by more than one, and going
 * back is only a repeat of a message already seen (a resend after a reconnect).
 */
export function expectComplete(seqs: number[] | undefined, to: number, from = 1): void {
  expect([...new Set(seqs)]).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
  let max = from - 1;
  for (const s of seqs ?? []) {
    if (s > max) {
      expect(s, `seq ${s} came right after ${max}`).toBe(max + 1);
      max = s;
    }
  }
}

/**
 * Every seq from..to arrived; in order, except for at most `maxEarly` messages that came ahead of
 * the ones before them (a Mosquitto 2.0 bridge sends a message published during its reconnect
 * handshake before the queue the outage built). Returns the seqs that came early.
 */
export function expectCompleteAllowingEarly(seqs: number[] | undefined, to: number, maxEarly: number, from = 1): number[] {
  const all = seqs ?? [];
  expect([...new Set(all)]).toEqual(expect.arrayContaining(Array.from({ length: to - from + 1 }, (_, i) => from + i)));
  expect(new Set(all).size).toBe(to - from + 1);
  // A message came early when a lower seq first arrives after its own first arrival.
  const firstAt = new Map<number, number>();
  for (const [i, s] of all.entries()) if (!firstAt.has(s)) firstAt.set(s, i);
  const early = [...firstAt].filter(([s, i]) => [...firstAt].some(([t, j]) => t < s && j > i)).map(([s]) => s);
  expect(early.length, `seqs that came ahead of lower ones: ${early.join(', ')}`).toBeLessThanOrEqual(maxEarly);
  // Everything else in order: moving forward only to the next seq that did not come early.
  let max = from - 1;
  for (const s of all) {
    if (early.includes(s) || s <= max) continue;
    let next = max + 1;
    while (early.includes(next)) next++;
    expect(s, `seq ${s} came right after ${max}`).toBe(next);
    max = s;
  }
  return early;
}

/** A repeated message (same camera and seq) carries the same id. */
export function expectSameIdOnRepeat(msgs: Received[]): number {
  const ids = new Map<string, string>();
  let repeats = 0;
  for (const m of msgs) {
    if (!m.topic.endsWith('/result')) continue;
    const key = `${m.json.camera}/${m.json.seq}`;
    if (ids.has(key)) {
      repeats++;
      expect(m.json.id, key).toBe(ids.get(key));
    }
    ids.set(key, m.json.id);
  }
  return repeats;
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() };
}
