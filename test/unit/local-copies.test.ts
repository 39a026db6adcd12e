import { describe, expect, it } from 'vitest';
import { isLoopback, LocalCopies } from '../../src/publish/local-copies.js';

/** privacy.includeCrops: local: the in-memory copies by journal position stay in their bounds, oldest out first. */
describe('LocalCopies', () => {
  it('keeps at most maxEntries, dropping the oldest positions first', () => {
    const c = new LocalCopies({ maxEntries: 3, maxBytes: 1000 });
    for (let seq = 1; seq <= 5; seq++) c.put(seq, `payload ${seq}`);
    expect([...c.entries()].map(([s]) => s)).toEqual([3, 4, 5]);
    expect(c.get(2)).toBeUndefined();
    expect(c.get(5)).toBe('payload 5');
    expect(c.evicted).toBe(2);
  });

  it('keeps at most maxBytes; a payload larger than the bound is not kept at all', () => {
    const c = new LocalCopies({ maxEntries: 100, maxBytes: 25 });
    c.put(1, 'a'.repeat(10));
    c.put(2, 'b'.repeat(10));
    c.put(3, 'c'.repeat(10)); // 30 > 25: the oldest goes
    expect([...c.entries()].map(([s]) => s)).toEqual([2, 3]);
    c.put(4, 'd'.repeat(26));
    expect(c.get(4)).toBeUndefined();
    expect(c.size).toBe(2);
  });

  it('gives the local copy to loopback clients only, the journaled payload to others and for unknown positions', () => {
    const c = new LocalCopies();
    c.put(7, '{"crop":"..."}');
    expect(c.payloadFor(7, '{}', true)).toBe('{"crop":"..."}');
    expect(c.payloadFor(7, '{}', false)).toBe('{}');
    expect(c.payloadFor(8, '{}', true)).toBe('{}');
  });

  it('loopback addresses', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopback(a), a).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:192.168.1.2', '', undefined, '128.0.0.1', 'fe80::1']) expect(isLoopback(a), String(a)).toBe(false);
  });
});
