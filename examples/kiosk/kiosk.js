// The edge-inferd kiosk page: live picture (GET /preview.mjpeg) and the current subject's result
// (GET /events, Server-Sent Events). Plain browser JavaScript, no build step, no dependencies.
//
// Everything shown comes from the daemon and is written with textContent or as an <img> src built
// from a checked base64 string: nothing is ever parsed as HTML. Loaded as a module (strict, deferred).
(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  /** The camera shown: ?camera=, else the first one heard from. */
  let camera = params.get('camera');
  const $ = (id) => document.getElementById(id);

  /** What the page has shown (the browser test reads it): assessment ids in order, results counted. */
  const seen = { assessments: [], results: 0, lastEventId: '', connected: 0 };
  window.kiosk = seen;
  // A reloaded page resumes where it was (the position is a journal position of this daemon).
  try {
    seen.lastEventId = sessionStorage.getItem('edge-inferd.lastEventId') || '';
  } catch {
    // no storage (a locked-down kiosk browser): start from now
  }
  function remember(id) {
    if (!id) return;
    seen.lastEventId = id;
    try {
      sessionStorage.setItem('edge-inferd.lastEventId', id);
    } catch {
      // not kept across a reload
    }
  }

  /** A URL of the daemon (relative to /kiosk/), with the token when the page was given one. */
  function daemonUrl(path, query) {
    const q = new URLSearchParams(query);
    if (token) q.set('token', token);
    const s = q.toString();
    return `../${path}${s ? `?${s}` : ''}`;
  }

  const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
  /** A PNG from a payload as an image source, or '' when it is not plain base64. */
  const pngSource = (b64) => (typeof b64 === 'string' && BASE64.test(b64) ? `data:image/png;base64,${b64}` : '');
  const percent = (x) => (typeof x === 'number' ? `${Math.round(x * 100)} %` : '');

  // ------------------------------------------------------------------ live picture
  const preview = $('preview');
  const previewState = $('preview-state');
  let previewRetry;
  function startPreview() {
    if (!camera) return;
    clearTimeout(previewRetry);
    // A fresh request (after a daemon restart the old stream has ended): the same URL, set anew.
    preview.removeAttribute('src');
    setTimeout(() => {
      preview.src = daemonUrl('preview.mjpeg', { camera });
    }, 0);
  }
  preview.addEventListener('load', () => {
    previewState.textContent = '';
    previewState.hidden = true;
  });
  preview.addEventListener('error', () => {
    if (!preview.getAttribute('src')) return;
    previewState.hidden = false;
    previewState.textContent = 'camera picture unavailable, retrying…';
    previewRetry = setTimeout(startPreview, 2000);
  });

  // ------------------------------------------------------------------ the answer
  const headline = $('headline');
  const hint = $('hint');
  const eyes = $('eyes');
  const item = $('item');
  /** The track whose assessment is on screen. */
  let shownTrack;
  let currentTrack;

  function say(title, note) {
    headline.textContent = title;
    hint.textContent = note || '';
  }

  function figureFor(region) {
    let fig = eyes.querySelector(`figure[data-region="${CSS.escape(region)}"]`);
    if (!fig) {
      fig = document.createElement('figure');
      fig.className = 'eye';
      fig.dataset.region = region;
      const img = document.createElement('img');
      img.className = 'heatmap';
      img.alt = '';
      const cap = document.createElement('figcaption');
      for (const cls of ['side', 'label', 'score']) {
        const span = document.createElement('span');
        span.className = cls;
        cap.append(span, ' ');
      }
      cap.querySelector('.side').textContent = region;
      fig.append(img, cap);
      eyes.append(fig);
    }
    return fig;
  }

  function showAssessment(a) {
    shownTrack = a.track;
    item.hidden = true;
    eyes.hidden = false;
    for (const fig of eyes.querySelectorAll('figure')) fig.hidden = true;
    for (const [region, r] of Object.entries(a.regions || {})) {
      const fig = figureFor(region);
      fig.hidden = false;
      fig.classList.toggle('absent', !!r.notDetected);
      fig.dataset.assessment = a.id;
      fig.querySelector('.label').textContent = r.notDetected ? 'not detected' : String(r.label);
      fig.querySelector('.score').textContent = r.notDetected ? '' : percent(r.score);
      const img = fig.querySelector('img');
      const src = pngSource(r.heatmap?.png) || pngSource(r.crop);
      if (src) img.src = src;
      else img.removeAttribute('src');
      img.alt = r.heatmap ? `where the model looked for ${r.label}` : '';
    }
    say('Your result', 'ask the staff if you have questions');
  }

  function clearAnswer(title, note) {
    shownTrack = undefined;
    eyes.hidden = true;
    say(title, note);
  }

  /** A per-frame result: who is there, and whether they need to come closer. */
  function onResult(r) {
    seen.results++;
    if (r.task === 'classify') {
      eyes.hidden = true;
      item.hidden = false;
      item.querySelector('.label').textContent = String(r.label);
      item.querySelector('.score').textContent = percent(r.score);
      say('This goes in:', '');
      return;
    }
    const objects = Array.isArray(r.objects) ? r.objects : undefined;
    if (!objects) {
      // A one-model detector: its best box's label.
      eyes.hidden = true;
      item.hidden = false;
      item.querySelector('.label').textContent = r.label === undefined ? 'nothing' : String(r.label);
      item.querySelector('.score').textContent = percent(r.score);
      say(r.label === undefined ? 'Not detected' : 'This goes in:', '');
      return;
    }
    if (!objects.length) {
      currentTrack = undefined;
      if (shownTrack === undefined) clearAnswer('Not detected', 'please stand in front of the camera');
      return;
    }
    const subject = objects[0];
    currentTrack = subject.track;
    if (shownTrack !== undefined && shownTrack === currentTrack) return;
    if (shownTrack !== undefined) clearAnswer('Hold still…', '');
    const regions = Object.values(subject.regions || {});
    if (regions.some((x) => x.skipped === 'small')) say('Step closer', 'we need a closer look at your eyes');
    else if (regions.some((x) => x.notDetected)) say('Not detected', 'please open both eyes and look at the camera');
    else say('Hold still…', 'looking at your eyes');
  }

  function onEvent(e) {
    if (e.type === 'cleared' && e.track !== undefined && e.track === shownTrack)
      clearAnswer('Not detected', 'please stand in front of the camera');
  }

  // ------------------------------------------------------------------ the stream
  const connection = $('connection');
  let source;
  let reconnect;

  /** Picks the first camera heard from when none was given. */
  function accept(payload) {
    if (!camera && typeof payload.camera === 'string') {
      camera = payload.camera;
      $('camera').textContent = `camera ${camera}`;
      startPreview();
    }
    return payload.camera === camera;
  }

  function handler(fn) {
    return (ev) => {
      remember(ev.lastEventId);
      let payload;
      try {
        payload = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (payload && typeof payload === 'object' && accept(payload)) fn(payload);
    };
  }

  function connect() {
    clearTimeout(reconnect);
    // A new EventSource sends no Last-Event-ID: the position goes in the query instead.
    const query = {};
    if (camera) query.camera = camera;
    if (seen.lastEventId) query.lastEventId = seen.lastEventId;
    source = new EventSource(daemonUrl('events', query));
    source.addEventListener('open', () => {
      seen.connected++;
      connection.textContent = 'online';
      connection.className = 'note online';
      // After a daemon restart the picture's stream has ended too.
      if (seen.connected > 1) startPreview();
    });
    source.addEventListener('error', () => {
      connection.textContent = 'reconnecting…';
      connection.className = 'note';
      // The browser retries by itself (and sends Last-Event-ID) unless the daemon refused the stream.
      if (source.readyState === EventSource.CLOSED) reconnect = setTimeout(connect, 2000);
    });
    for (const name of ['heartbeat', 'reset']) source.addEventListener(name, (ev) => remember(ev.lastEventId));
    source.addEventListener('result', handler(onResult));
    source.addEventListener('event', handler(onEvent));
    source.addEventListener(
      'assessment',
      handler((a) => {
        if (seen.assessments.includes(a.id)) return;
        seen.assessments.push(a.id);
        showAssessment(a);
      }),
    );
  }

  if (camera) {
    $('camera').textContent = `camera ${camera}`;
    startPreview();
  }
  connect();
})();
