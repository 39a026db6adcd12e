import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { loadModelPackage, ModelError } from '../../src/inference/package.js';
import { demoModelDir } from '../../src/paths.js';
import { configFiles } from '../helpers/config-files.js';

/** Files written by someone careless or hostile: alias bombs, numbers past a double, paths out of a package. */

const { dir, file, problems } = configFiles('hostile-');

/** Nine aliases per level, six levels: 9^6 nodes once expanded, from 7 lines. */
const BOMB = [
  'a: &a [x, x, x, x, x, x, x, x, x]',
  ...['b', 'c', 'd', 'e', 'f'].map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]`),
].join('\n');

describe('row 13: a YAML alias bomb is a config problem with its file and line', () => {
  it('config: a ConfigError (check-config 1, run 78) naming the file and the line of the first alias', () => {
    expect(problems(`deviceId: x\n${BOMB}\n`)).toEqual([
      expect.stringMatching(/^FILE:3: YAML: aliases expand past 100 nodes \(an alias bomb\?\)/),
    ]);
  });

  it('manifest: a MODEL_MANIFEST error naming manifest.yaml and the line', async () => {
    const pkg = join(dir, 'bomb-pkg');
    cpSync(demoModelDir, pkg, { recursive: true });
    writeFileSync(join(pkg, 'manifest.yaml'), readFileSync(join(pkg, 'manifest.yaml'), 'utf8') + BOMB + '\n');
    const err = await loadModelPackage(pkg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelError).code).toBe('MODEL_MANIFEST');
    expect((err as ModelError).message).toMatch(/manifest\.yaml:\d+: YAML: aliases expand past 100 nodes/);
  });
});

describe('row 14: numbers are finite and within their documented ranges', () => {
  it.each([
    [
      'mqtt:\n  keepaliveSec: 1e400\n',
      'mqtt.keepaliveSec: must be a finite number (got .inf; a literal like 1e400 is past the largest number)',
    ],
    [
      'mqtt:\n  reconnectMaxSec: .inf\n',
      'mqtt.reconnectMaxSec: must be a finite number (got .inf; a literal like 1e400 is past the largest number)',
    ],
    [
      'health:\n  stallAfterSec: -.inf\n',
      'health.stallAfterSec: must be a finite number (got -.inf; a literal like 1e400 is past the largest number)',
    ],
    [
      'health:\n  stallAfterSec: .nan\n',
      'health.stallAfterSec: must be a finite number (got .nan; a literal like 1e400 is past the largest number)',
    ],
    [
      'stats:\n  intervalSec: 1e-400\n',
      'stats.intervalSec: 1e-400 is too close to 0 for a number here (it would read as 0); write 0 or a larger value (FILE:2)',
    ],
    ['cameras:\n  a:\n    uri: test://ball\n    fps: 1e-7\n', 'cameras.a.fps: must be >= 0.01 (got 1e-7)'],
    ['journal:\n  retentionHours: 1e300\n', 'journal.retentionHours: must be <= 87600 (got 1e+300)'],
  ])('%j', (text, expected) => {
    expect(problems(text)).toEqual([expected]);
  });

  it('the same from an environment override: 1e-400 is refused naming the variable, .inf naming the key and the variable', () => {
    const envProblems = (env: NodeJS.ProcessEnv) => {
      try {
        loadConfig({ file: file('deviceId: env\n'), env });
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
      }
      throw new Error('config was accepted');
    };
    expect(envProblems({ EDGE_INFERD_STATS__INTERVAL_SEC: '1e-400' })).toEqual([
      'EDGE_INFERD_STATS__INTERVAL_SEC: 1e-400 is too close to 0 for a number here (it would read as 0); write 0 or a larger value',
    ]);
    expect(envProblems({ EDGE_INFERD_MQTT__KEEPALIVE_SEC: '.inf' })).toEqual([
      'mqtt.keepaliveSec: must be a finite number (got .inf; a literal like 1e400 is past the largest number) [from EDGE_INFERD_MQTT__KEEPALIVE_SEC]',
    ]);
  });

  it('0 written as 0 (or 0.0, 0e5) is still 0: stats off', () => {
    for (const zero of ['0', '0.0', '0e5'])
      expect(loadConfig({ file: file(`stats:\n  intervalSec: ${zero}\n`), env: {} }).stats.intervalSec).toBe(0);
  });
});

describe('row 12: manifest paths stay inside the package folder', () => {
  function pkgWith(edit: (pkg: string, manifest: Record<string, string>) => void): string {
    const root = mkdtempSync(join(tmpdir(), 'pkg-escape-'));
    const pkg = join(root, 'pkg');
    cpSync(demoModelDir, pkg, { recursive: true });
    const fields: Record<string, string> = {};
    edit(pkg, fields);
    let text = readFileSync(join(pkg, 'manifest.yaml'), 'utf8');
    for (const [k, v] of Object.entries(fields)) text = text.replace(new RegExp(`^${k}:.*$`, 'm'), `${k}: ${v}`);
    writeFileSync(join(pkg, 'manifest.yaml'), text);
    return pkg;
  }
  const refusal = async (pkg: string) => {
    const err = await loadModelPackage(pkg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelError);
    return err as ModelError;
  };

  it('labels: ../../../../etc/passwd is refused, never read', async () => {
    const err = await refusal(pkgWith((_pkg, m) => (m.labels = '../../../../../../../../etc/passwd')));
    expect(err.code).toBe('MODEL_MANIFEST');
    expect(err.message).toMatch(/labels: "\.\.\/.*etc\/passwd" resolves to \/etc\/passwd, outside the package folder/);
  });

  it('model: ../elsewhere/x.onnx (a valid model with the right sha256) is refused', async () => {
    const pkg = pkgWith((pkg) => {
      mkdirSync(join(pkg, '..', 'elsewhere'));
      cpSync(join(pkg, 'model.onnx'), join(pkg, '..', 'elsewhere', 'x.onnx'));
    });
    const text = readFileSync(join(pkg, 'manifest.yaml'), 'utf8').replace(/^model:.*$/m, 'model: ../elsewhere/x.onnx');
    writeFileSync(join(pkg, 'manifest.yaml'), text);
    const err = await refusal(pkg);
    expect(err.message).toMatch(/model: "\.\.\/elsewhere\/x\.onnx" resolves to .*\/elsewhere\/x\.onnx, outside the package folder/);
  });

  it('a symlink inside the package that points outside is refused (realpath)', async () => {
    const pkg = pkgWith((pkg, m) => {
      const outside = join(pkg, '..', 'outside.txt');
      writeFileSync(outside, 'a\nb\n');
      symlinkSync(outside, join(pkg, 'labels.txt'));
      m.labels = 'labels.txt';
    });
    const err = await refusal(pkg);
    expect(err.message).toMatch(/labels: "labels\.txt" resolves to .*\/outside\.txt, outside the package folder/);
  });

  it('a symlink that stays inside, and a package folder reached through a symlink, load', async () => {
    const pkg = pkgWith((pkg, m) => {
      writeFileSync(join(pkg, 'real-labels.txt'), 'cardboard\nglass\nmetal\npaper\nplastic\ntrash\n');
      symlinkSync('real-labels.txt', join(pkg, 'labels.txt'));
      m.labels = 'labels.txt';
    });
    const link = join(pkg, '..', 'current');
    symlinkSync(pkg, link);
    const loaded = await loadModelPackage(link);
    expect(loaded.labels).toEqual(['cardboard', 'glass', 'metal', 'paper', 'plastic', 'trash']);
    expect(createHash('sha256').update(readFileSync(loaded.modelPath)).digest('hex')).toBe(loaded.manifest.sha256);
  });
});
