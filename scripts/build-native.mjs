#!/usr/bin/env node
// Builds the native addons in native/ (run by `npm install` through the "install" script).
//
// - GStreamer dev files present (pkg-config gstreamer-app-1.0 gstreamer-video-1.0): build both
//   edge_capture.node (camera capture), edge_notify.node (sd_notify) and edge_tensor.node (frame ->
//   model input tensor).
// - Missing: build edge_notify.node and edge_tensor.node only and warn, naming the apt packages. The install succeeds:
//   the daemon still runs (images:// cameras, systemd notify); using a GStreamer camera then fails
//   with an error naming the same packages.
// - CI=true: missing GStreamer dev files or a failed build exit 1, so CI never silently skips.
//
// node-gyp: node_modules/.bin/node-gyp when present, else the one npm bundles.
// Node headers: npm's nodedir config when set; else the headers next to this node binary
// (<prefix>/include/node), so no download is needed; else node-gyp's own download.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const CI = process.env.CI === 'true';
const APT = 'libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good';
const tag = 'edge-inferd native build:';

const log = (msg) => console.log(`${tag} ${msg}`);
const warn = (msg) => console.warn(`\n${tag} WARNING: ${msg}\n`);

function fail(msg) {
  console.error(`\n${tag} ERROR: ${msg}\n`);
  process.exit(1);
}

function hasGStreamerDev() {
  const r = spawnSync('pkg-config', ['--exists', 'gstreamer-app-1.0', 'gstreamer-video-1.0'], { stdio: 'ignore' });
  if (r.error) return { ok: false, why: 'pkg-config is not installed' };
  if (r.status !== 0) return { ok: false, why: 'pkg-config does not find gstreamer-app-1.0 / gstreamer-video-1.0' };
  return { ok: true };
}

/** [command, args prefix] to run node-gyp, always with this node binary. */
function findNodeGyp() {
  const local = join(root, 'node_modules', '.bin', 'node-gyp');
  if (existsSync(local)) return [process.execPath, [realpathSync(local)]];
  const prefix = resolve(dirname(process.execPath), '..');
  const bundled = [
    process.env.npm_config_node_gyp, // set by npm for lifecycle scripts: its bundled node-gyp
    join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].find((p) => p && existsSync(p));
  if (bundled) return [process.execPath, [bundled]];
  return ['node-gyp', []]; // on PATH, or a clear "cannot run node-gyp" below
}

function nodedirArgs() {
  if (process.env.npm_config_nodedir) return []; // node-gyp reads npm's config from the environment
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) {
    return [`--nodedir=${prefix}`];
  }
  return [];
}

function build(withGStreamer) {
  const [cmd, pre] = findNodeGyp();
  const args = [
    ...pre,
    'rebuild',
    `--directory=${nativeDir}`,
    '--jobs=max',
    ...nodedirArgs(),
    '--',
    `-Dwith_gstreamer=${withGStreamer ? 1 : 0}`,
  ];
  log(
    `${withGStreamer ? 'building edge_capture + edge_notify + edge_tensor' : 'building edge_notify + edge_tensor only'}: ${[cmd, ...args].join(' ')}`,
  );
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.error) return { ok: false, why: `cannot run node-gyp (${r.error.message})` };
  if (r.status !== 0) return { ok: false, why: `node-gyp exited with ${r.status ?? r.signal}` };
  const want = withGStreamer ? ['edge_capture', 'edge_notify', 'edge_tensor'] : ['edge_notify', 'edge_tensor'];
  const missing = want.filter((n) => !existsSync(join(nativeDir, 'build', 'Release', `${n}.node`)));
  if (missing.length) return { ok: false, why: `node-gyp succeeded but ${missing.join(', ')}.node is missing` };
  return { ok: true };
}

const gst = hasGStreamerDev();
if (!gst.ok) {
  const msg =
    `GStreamer development files not found (${gst.why}): camera capture is NOT built.\n` +
    `  Install them and rebuild:  sudo apt-get install ${APT}\n` +
    `                             npm rebuild edge-inferd   (or: node scripts/build-native.mjs)\n` +
    `  Until then cameras other than images:// fail with an error naming these packages.`;
  if (CI) fail(msg);
  warn(msg);
  // Stale capture addon from an earlier build would claim capture works: remove it first.
  rmSync(join(nativeDir, 'build'), { recursive: true, force: true });
  const r = build(false);
  if (!r.ok) {
    warn(
      `the sd_notify addon did not build either (${r.why}); systemd notify will be a no-op. A C++ toolchain is needed: sudo apt-get install build-essential python3`,
    );
  }
  process.exit(0);
}

const r = build(true);
if (r.ok) {
  log('done: native/build/Release/edge_capture.node, edge_notify.node, edge_tensor.node');
  process.exit(0);
}
if (CI) fail(`the native build failed: ${r.why}`);
warn(
  `the native build failed (${r.why}): camera capture is NOT available.\n` +
    `  Check the compiler output above; needed: build-essential python3 ${APT}`,
);
const n = build(false);
if (!n.ok) warn(`the sd_notify addon did not build either (${n.why}); systemd notify will be a no-op.`);
process.exit(0);
