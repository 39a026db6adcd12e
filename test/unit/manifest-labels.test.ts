import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelPackage } from '../../src/inference/package.js';
import { writePackage } from '../helpers/rollout.js';

/** Issue 21 row 11: labels with control characters (inline or in a labels file) are refused at load, naming which. */

describe('manifest labels', () => {
  it('an inline label with an escape sequence is refused, naming its index', async () => {
    const dir = await writePackage(join(mkdtempSync(join(tmpdir(), 'labels-')), 'p'), {
      name: 'm',
      version: '1.0.0',
      labels: ['red', '"\\e]52;c;aGk=\\a"', 'blue'],
    });
    await expect(loadModelPackage(dir)).rejects.toMatchObject({
      code: 'MODEL_MANIFEST',
      message: expect.stringContaining('labels[1]: "\\u001b]52;c;aGk=\\u0007" has a control character'),
    });
  });

  it('a labels file with a bidirectional override is refused too; plain labels load', async () => {
    const dir = await writePackage(join(mkdtempSync(join(tmpdir(), 'labels-')), 'p'), {
      name: 'm',
      version: '1.0.0',
      labels: ['a', 'b', 'c'],
      manifest: (t) => t.replace(/labels: \[.*\]/, 'labels: labels.txt'),
    });
    writeFileSync(join(dir, 'labels.txt'), 'red\ngre\u202eneen\nblue\n');
    await expect(loadModelPackage(dir)).rejects.toMatchObject({ message: expect.stringContaining('labels[1]') });
    writeFileSync(join(dir, 'labels.txt'), 'red\ngreen\nblue\n');
    expect((await loadModelPackage(dir)).labels).toEqual(['red', 'green', 'blue']);
  });
});
