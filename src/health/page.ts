/**
 * The technician's status page at `/`: one self-contained HTML document (inline CSS and JS, no
 * build step, no external assets) that polls /status, /healthz and /readyz and refreshes each
 * camera's /snapshot.jpg. It holds no data itself, so it is served without the bearer token; when
 * the API answers 401 the page asks for the token once and sends it as an Authorization header.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-inferd</title>
<style>
  :root { --bg:#f4f5f7; --card:#fff; --fg:#1d2330; --mute:#6b7280; --ok:#1a7f37; --warn:#b7791f; --bad:#c62828; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--fg); }
  header { display:flex; flex-wrap:wrap; gap:12px; align-items:center; padding:12px 16px; background:#1d2330; color:#fff; }
  header h1 { font-size:18px; margin:0 12px 0 0; }
  .badge { padding:2px 10px; border-radius:10px; font-weight:600; background:#555; color:#fff; }
  .ok { background:var(--ok); } .warn { background:var(--warn); } .bad { background:var(--bad); }
  main { padding:16px; display:grid; gap:16px; grid-template-columns:repeat(auto-fill, minmax(340px, 1fr)); }
  section { background:var(--card); border-radius:8px; padding:12px 14px; box-shadow:0 1px 2px rgba(0,0,0,.08); }
  h2 { font-size:15px; margin:0 0 8px; }
  table { border-collapse:collapse; width:100%; }
  td { padding:2px 6px 2px 0; vertical-align:top; overflow-wrap:anywhere; }
  td:first-child { color:var(--mute); white-space:nowrap; width:8em; }
  img.snap { width:100%; border-radius:4px; background:#ddd; min-height:60px; display:block; margin-top:8px; }
  .reason { color:var(--bad); }
  .mute { color:var(--mute); }
  code { font-size:12px; }
</style>
</head>
<body>
<header>
  <h1 id="title">edge-inferd</h1>
  <span class="badge" id="health">health …</span>
  <span class="badge" id="ready">ready …</span>
  <span id="summary" class="mute"></span>
</header>
<div id="problem" class="reason" style="padding:0 16px"></div>
<main id="cards">
  <section id="device"><h2>Device</h2><table id="devtable"></table></section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('edge-inferd-token') || '';
const prev = {};

async function api(path, binary) {
  const res = await fetch(path, { cache: 'no-store', headers: token ? { Authorization: 'Bearer ' + token } : {} });
  if (res.status === 401) {
    const t = prompt('This daemon needs its bearer token (http.token):');
    if (t) { token = t.trim(); sessionStorage.setItem('edge-inferd-token', token); }
    throw new Error('unauthorized');
  }
  return { status: res.status, body: binary ? await res.blob() : await res.json() };
}

function esc(s) { return String(s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';'); }
function rows(pairs) {
  const shown = pairs.filter((p) => p[1] !== undefined && p[1] !== null && p[1] !== '');
  return shown.map((p) => '<tr><td>' + esc(p[0]) + '</td><td>' + p[1] + '</td></tr>').join('');
}
function badge(el, ok, text, warn) { el.className = 'badge ' + (ok ? (warn ? 'warn' : 'ok') : 'bad'); el.textContent = text; }
// A result's or region's answer: the label and score; multi-label: every label on; regress: the values.
function num(v) { return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2); }
function answer(x, nothing) {
  if (x.values) return Object.entries(x.values).map((e) => esc(e[0]) + ' <b>' + num(e[1]) + '</b>').join(', ');
  const pct = (score) => (score === undefined ? '' : ' ' + (score * 100).toFixed(1) + ' %');
  // A result's \`on\` lists {label, score}; a region's, the label names.
  const one = (o) => (typeof o === 'string' ? '<b>' + esc(o) + '</b>' : '<b>' + esc(o.label) + '</b>' + pct(o.score));
  if (x.on) return x.on.length ? 'on: ' + x.on.map(one).join(', ') : 'no label on';
  return x.label === undefined ? nothing : '<b>' + esc(x.label) + '</b>' + pct(x.score);
}
function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  return s < 60 ? s.toFixed(0) + ' s ago' : (s / 60).toFixed(0) + ' min ago';
}
function reason(text) { return '<span class="reason">' + esc(text) + '</span>'; }
function mute(text) { return '<div class="mute">' + esc(text) + '</div>'; }
function providerCell(m) {
  if (!m.provider) return '';
  return '<b>' + esc(m.provider) + '</b>' + (m.providerAttempts || []).filter((a) => !a.ok).map((a) => mute(a.provider + ': ' + a.error)).join('');
}
function stageCell(st) {
  const ms = st.latencyMs.preprocess + st.latencyMs.inference + st.latencyMs.postprocess;
  return esc(st.name) + ' ' + ms.toFixed(1) + ' ms' + (st.crops !== undefined ? ' (' + st.crops + ' crops, ' + st.skipped + ' skipped)' : '');
}
function errorsCell(c) {
  if (!c.errors && !c.failures) return '';
  return c.errors + ' camera, ' + c.failures + ' inference' + (c.lastError ? mute(c.lastError.message || c.lastError) : '');
}
function lastResultCell(r) {
  if (!r) return 'none yet';
  return answer(r, 'nothing detected') + ' · ' + ago(r.tsMs);
}
// A regress model's points (regress.points), in frame pixels.
function pointsCell(r) {
  if (!r || !r.points) return '';
  return r.points.map((p) => esc(p.name) + ' (' + Math.round(p.x) + ', ' + Math.round(p.y) + ')').join(', ');
}
function regionText(e) {
  const r = e[1];
  return esc(e[0]) + ': ' + (r.notDetected ? 'not detected' : r.skipped ? 'skipped (' + esc(r.skipped) + ')' : answer(r, ''));
}
function objectsCell(r) {
  if (!r || !r.objects) return '';
  return r.objects.map((o) => '#' + esc(o.track || '?') + ' ' + Object.entries(o.regions).map(regionText).join(', ')).join('<br>') || 'none';
}
function many(n, one, more) { return n + ' ' + (n === 1 ? one : more); }
// What waits for the broker is the outbox's count: the journal's pending keeps a message acknowledged
// since its last write (its acknowledgement is written with the next one).
function journalCell(j, o) {
  if (!j) return reason('not open');
  const waiting = o ? o.queued + o.inflight : j.pending;
  const held = many(waiting, 'message', 'messages') + ' waiting for the broker · ' + many(j.rows, 'row', 'rows') + ' kept';
  if (j.mode !== 'read-write') return reason(j.mode) + ' · ' + held + mute(j.lastWriteError || '');
  return (j.writable ? '' : reason('writes failing') + ' · ') + held + (j.lastWriteError ? mute(j.lastWriteError) : '');
}
// The kiosk screen's streams: the whole daemon's (with those dropped for not reading), or one camera's.
function streamsCell(st) {
  if (!st) return '';
  const now = many(st.events, 'live stream', 'live streams') + ', ' + many(st.preview, 'preview viewer', 'preview viewers');
  const dropped = (st.eventsDropped || 0) + (st.previewDropped || 0);
  return now + (dropped ? mute(many(dropped, 'stream', 'streams') + ' dropped for not reading') : '');
}
function tracksCell(p) {
  if (!p) return '';
  const q = p.qualitySkipped;
  return p.tracks + ' seen, ' + p.assessments + ' assessed · quality skipped ' + q.small + ' small, ' + q.blurred + ' blurred';
}

function cameraCard(name) {
  let el = $('cam-' + name);
  if (el) return el;
  el = document.createElement('section');
  el.id = 'cam-' + name;
  el.innerHTML = '<h2>Camera ' + esc(name) + '</h2><table></table><img class="snap" alt="latest snapshot of ' + esc(name) + '">';
  $('cards').appendChild(el);
  return el;
}

async function refreshSnapshot(name, img) {
  try {
    const r = await api('/snapshot.jpg?camera=' + encodeURIComponent(name), true);
    if (r.status !== 200) return;
    const url = URL.createObjectURL(r.body);
    img.onload = () => { if (img.dataset.url) URL.revokeObjectURL(img.dataset.url); img.dataset.url = url; };
    img.src = url;
  } catch (e) { /* next round */ }
}

async function tick() {
  try {
    const [st, h, rd] = await Promise.all([api('/status'), api('/healthz'), api('/readyz')]);
    const s = st.body;
    $('title').textContent = 'edge-inferd · ' + s.deviceId;
    document.title = 'edge-inferd · ' + s.deviceId;
    badge($('health'), h.body.ok, h.body.ok ? (h.body.verdict === 'waiting' ? 'waiting' : 'healthy') : 'stalled', h.body.verdict === 'waiting');
    badge($('ready'), rd.body.ok, rd.body.ok ? 'ready' : 'not ready');
    const failing = Object.entries(rd.body.checks || {}).filter((c) => !c[1].ok).map((c) => c[0] + ': ' + c[1].detail);
    $('problem').textContent = [h.body.reason, ...failing].filter(Boolean).join(' · ');
    $('summary').textContent = s.state + ' · up ' + Math.round(s.uptimeSec / 60) + ' min · v' + s.version;
    const m = s.model || {};
    const reload = s.reload || {};
    $('devtable').innerHTML = rows([
      ['model', m.name ? esc(m.name + ' ' + m.version) : reason('not loaded')],
      ['provider', providerCell(m)],
      ['mqtt', s.mqtt ? (s.mqtt.connected ? 'connected to ' : reason('not connected') + ' to ') + esc(s.mqtt.url) : ''],
      ['stages', (s.stages || []).map((st) => esc(st.pipeline + '/' + st.stage + ': ' + st.name + ' ' + st.version + ' on ' + st.provider))
        .join('<br>')],
      ['journal', journalCell(s.journal, s.mqtt && s.mqtt.outbox)],
      ['kiosk streams', s.streams ? streamsCell({ events: s.streams.events.clients, preview: s.streams.preview.clients,
        eventsDropped: s.streams.events.dropped, previewDropped: s.streams.preview.dropped }) : ''],
      ['config', esc(s.config)],
      ['last reload', reload.atMs ? (reload.ok ? 'ok' : reason('failed')) + ' ' + ago(reload.atMs) : ''],
      ['restart required', (reload.restartRequired || []).length ? reason(reload.restartRequired.join(', ')) : ''],
    ]);
    for (const [name, c] of Object.entries(s.cameras || {})) {
      const el = cameraCard(name);
      const p = prev[name];
      const now = Date.now();
      const rate = p ? ((c.inferred - p.inferred) * 1000) / (now - p.at) : undefined;
      prev[name] = { inferred: c.inferred, at: now };
      const r = c.lastResult;
      el.querySelector('table').innerHTML = rows([
        ['state', c.state === 'streaming' ? c.state : reason(c.state)],
        ['results/s', rate === undefined ? '…' : rate.toFixed(1)],
        ['frames', c.received + ' captured, ' + c.dropped + ' dropped, ' + c.inferred + ' inferred'],
        ['errors', errorsCell(c)],
        ['last result', lastResultCell(r)],
        ['points', pointsCell(r)],
        ['latency', r ? r.latencyMs.inference.toFixed(1) + ' ms inference, ' + r.latencyMs.total.toFixed(1) + ' ms total' : ''],
        ['pipeline', c.pipeline ? esc(c.pipeline.name) + (r && r.pipeline ? ': ' + r.pipeline.stages.map(stageCell).join(' → ') : '') : ''],
        ['tracks', tracksCell(c.pipeline)],
        ['objects', objectsCell(r)],
        ['watching', streamsCell(s.streams && s.streams.cameras[name])],
      ]);
      refreshSnapshot(name, el.querySelector('img'));
    }
  } catch (e) {
    $('problem').textContent = 'cannot reach the daemon: ' + e.message;
    badge($('health'), false, 'unreachable');
  }
}
tick();
setInterval(tick, 2000);
</script>
</body>
</html>
`;
