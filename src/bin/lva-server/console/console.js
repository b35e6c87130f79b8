// lva-server's console (docs/console.md): plain JavaScript, no build step, no framework.
// Every call goes to the server's own API, with the credentials the user signed in with.
'use strict';

const $ = (id) => document.getElementById(id);
const AUTH_KEY = 'lva-server-authorization';
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4',
  '#42d4f4', '#f032e6', '#9a6324', '#008080', '#800000'];

let auth = sessionStorage.getItem(AUTH_KEY); // the Authorization header, or null
let live = null; // the stream in the live view: {id, abort: AbortController, hls}

class Unauthorized extends Error {}

// fetch() with the credentials. `credentials: 'omit'`: a 401 never makes the browser ask for a
// password with a dialog of its own; the page's sign-in form does.
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (auth) headers.set('Authorization', auth);
  const resp = await fetch(path, { ...options, headers, credentials: 'omit', cache: 'no-store' });
  if (resp.status === 401) {
    showSignIn(auth ? 'Those credentials were refused.' : 'This server needs credentials.');
    throw new Unauthorized();
  }
  return resp;
}

// The `error` (and `reasons`) of an answer that is not 2xx.
async function problem(resp) {
  try {
    const body = await resp.json();
    return { error: body.error || `HTTP ${resp.status}`, reasons: body.reasons || [] };
  } catch {
    return { error: `HTTP ${resp.status}`, reasons: [] };
  }
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function colorOf(label) {
  let h = 0;
  for (const c of String(label)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- sign-in ----

function showSignIn(message) {
  $('signin-message').textContent = message;
  $('signin').hidden = false;
  $('main').hidden = true;
}

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('signin-token').value.trim();
  if (token) {
    auth = `Bearer ${token}`;
  } else {
    const pair = new TextEncoder().encode(`${$('signin-user').value}:${$('signin-password').value}`);
    auth = `Basic ${btoa(String.fromCharCode(...pair))}`;
  }
  sessionStorage.setItem(AUTH_KEY, auth);
  $('signin-form').reset();
  $('signin').hidden = true;
  $('main').hidden = false;
  $('sign-out').hidden = false;
  refreshModels();
  refreshStreams();
});

$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(AUTH_KEY);
  auth = null;
  $('sign-out').hidden = true;
  stopLive();
  refreshModels();
});

// ---- models ----

async function refreshModels() {
  let models;
  try {
    const resp = await api('/models');
    models = (await resp.json()).models;
  } catch (e) {
    if (!(e instanceof Unauthorized)) $('server-status').textContent = `server unreachable: ${e.message}`;
    return;
  }
  $('server-status').textContent = `${models.length} model(s)`;
  $('sign-out').hidden = !auth;
  const rows = models.map((m) => {
    const s = m.stats || {};
    const tr = el('tr', null, { 'data-model': m.name });
    for (const v of [m.name, m.description || '', m.category, m.labels.length, m.device,
      m.threshold, m.workers, m['max-queue'], m['in-flight'], s.requests, s.found, s.empty,
      (s['bad-request'] || 0) + (s.busy || 0) + (s.failed || 0), s['mean-ms']]) {
      tr.append(el('td', v));
    }
    return tr;
  });
  $('models').tBodies[0].replaceChildren(...rows);
  for (const select of [$('stream-model'), $('image-model')]) {
    const names = models.map((m) => m.name);
    if ([...select.options].map((o) => o.value).join('\n') === names.join('\n')) continue;
    const chosen = select.value; // rebuilt only when the models changed: an open list stays open
    select.replaceChildren(...names.map((n) => el('option', n, { value: n })));
    if (names.includes(chosen)) select.value = chosen;
  }
}

// ---- streams ----

const streamRows = new Map(); // id → <tr>, kept so that their buttons survive the refreshes

function streamRow(id) {
  if (streamRows.has(id)) return streamRows.get(id);
  const tr = el('tr', null, { 'data-stream': id });
  for (let i = 0; i < 9; i++) tr.append(el('td'));
  const actions = el('td');
  const view = el('button', 'view', { type: 'button', class: 'view' });
  view.addEventListener('click', () => watch(id));
  const del = el('button', 'delete', { type: 'button', class: 'delete' });
  del.addEventListener('click', () => deleteStream(id));
  actions.append(view, del);
  tr.append(actions);
  streamRows.set(id, tr);
  return tr;
}

async function refreshStreams() {
  let streams;
  try {
    const resp = await api('/streams');
    streams = (await resp.json()).streams;
  } catch {
    return;
  }
  const body = $('streams').tBodies[0];
  const seen = new Set();
  streams.forEach((info, i) => {
    const st = info.status || {};
    const src = info.spec.source || {};
    const tr = streamRow(info.id);
    const cells = [info.id, info.spec.model, src.uri || src.pipeline || '', st.state,
      st.fps === null || st.fps === undefined ? '' : st.fps.toFixed(1), st.processed_frames,
      st.dropped_frames, st.documents, st.error || st.last_source_error || ''];
    cells.forEach((v, c) => {
      const text = v === undefined ? '' : String(v);
      if (tr.cells[c].textContent !== text) tr.cells[c].textContent = text;
    });
    tr.className = `state-${st.state}`;
    tr.dataset.state = st.state;
    // In the server's order (by id), moved only when out of place, so a click is never lost.
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    seen.add(info.id);
  });
  for (const [id, tr] of streamRows) {
    if (!seen.has(id)) { tr.remove(); streamRows.delete(id); }
  }
  $('streams-empty').hidden = streams.length > 0;
}

$('stream-hls').addEventListener('change', () => {
  $('stream-overlay').disabled = !$('stream-hls').checked;
});

$('stream-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const id = $('stream-id').value.trim();
  const definition = { source: { uri: $('stream-uri').value.trim() }, model: $('stream-model').value };
  if ($('stream-loop').checked) definition.source.loop = true;
  if ($('stream-realtime').checked) definition.source.realtime = true;
  const threshold = $('stream-threshold').value;
  if (threshold !== '') definition.ovinfer = { threshold: Number(threshold) };
  if ($('stream-hls').checked) {
    definition.outputs = { video: { overlay: $('stream-overlay').checked, hls: {} } };
  }
  $('stream-message').textContent = `creating ${id}…`;
  $('stream-reasons').replaceChildren();
  try {
    const resp = await api(`/streams/${encodeURIComponent(id)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(definition),
    });
    if (resp.ok) {
      $('stream-message').textContent = `stream ${id} ${resp.status === 201 ? 'created' : 'replaced'}`;
      await refreshStreams();
      watch(id);
    } else {
      const p = await problem(resp);
      $('stream-message').textContent = `refused (${resp.status}): ${p.error}`;
      $('stream-reasons').replaceChildren(...p.reasons.map((r) => el('li', r)));
    }
  } catch (e) {
    if (!(e instanceof Unauthorized)) $('stream-message').textContent = `failed: ${e.message}`;
  }
});

async function deleteStream(id) {
  if (live && live.id === id) stopLive();
  try {
    const resp = await api(`/streams/${encodeURIComponent(id)}`, { method: 'DELETE' });
    $('stream-message').textContent = resp.ok
      ? `stream ${id} deleted (${(await resp.json()).status.state})`
      : `delete ${id}: ${(await problem(resp)).error}`;
  } catch (e) {
    if (!(e instanceof Unauthorized)) $('stream-message').textContent = `delete ${id}: ${e.message}`;
  }
  refreshStreams();
}

// ---- live view: the HLS video and the documents ----

function stopLive() {
  if (!live) return;
  live.abort.abort();
  if (live.hls) live.hls.destroy();
  const video = $('live-video');
  video.removeAttribute('src');
  video.load();
  live = null;
  $('live-id').textContent = '';
}

async function watch(id) {
  stopLive();
  live = { id, abort: new AbortController(), hls: null };
  const mine = live;
  $('live-id').textContent = id;
  $('documents').replaceChildren();
  $('documents-count').textContent = '';
  let info;
  try {
    const resp = await api(`/streams/${encodeURIComponent(id)}`, { signal: mine.abort.signal });
    if (!resp.ok) { $('live-message').textContent = (await problem(resp)).error; return; }
    info = await resp.json();
  } catch {
    return;
  }
  const video = (info.spec.outputs || {}).video;
  $('live-video').hidden = !(video && video.hls);
  if (video && video.hls) {
    playVideo(mine);
  } else {
    $('live-message').textContent = 'This stream has no HLS output: its documents only.';
  }
  followEvents(mine);
}

async function playVideo(mine) {
  const url = `/streams/${encodeURIComponent(mine.id)}/hls/index.m3u8`;
  const message = $('live-message');
  // The playlist appears with the first segment, a few seconds after the start.
  for (let tries = 0; ; tries++) {
    if (mine.abort.signal.aborted) return;
    try {
      const resp = await api(url, { signal: mine.abort.signal });
      if (resp.ok) break;
      if (resp.status !== 404 || tries >= 60) { message.textContent = (await problem(resp)).error; return; }
    } catch {
      return;
    }
    message.textContent = 'Waiting for the first video segment…';
    await sleep(1000);
  }
  const video = $('live-video');
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls({
      xhrSetup: (xhr) => { if (auth) xhr.setRequestHeader('Authorization', auth); },
    });
    mine.hls = hls;
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      message.textContent = `video: ${data.details}`;
      if (data.type === window.Hls.ErrorTypes.NETWORK_ERROR) setTimeout(() => hls.startLoad(), 2000);
      else if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => {
      message.textContent = 'Playing.';
      video.play().catch(() => {});
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (!auth && video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url; // the browser's own HLS, which cannot send the credentials
    video.play().catch(() => {});
    message.textContent = 'Playing.';
  } else {
    message.textContent = window.lvaHlsMissing || 'This browser cannot play HLS.';
  }
}

// Server-sent events through fetch() (EventSource cannot send the Authorization header).
async function followEvents(mine) {
  const list = $('documents');
  let count = 0;
  const onEvent = (type, id, data) => {
    if (type === 'end') {
      $('documents-count').textContent = `${count} document(s); the stream is over`;
      return;
    }
    if (type === 'lagged') {
      list.prepend(el('li', `… ${JSON.parse(data).missed} document(s) missed`, { class: 'lagged' }));
      return;
    }
    const doc = JSON.parse(data);
    const entities = (doc.inferences || []).map((i) => {
      const tag = (i.entity || i.classification || {}).tag || {};
      return `${tag.value} ${Number(tag.confidence).toFixed(2)}`;
    });
    const li = el('li', `#${id} ${entities.join(', ')}`, { 'data-doc': data });
    list.prepend(li);
    while (list.children.length > 100) list.lastChild.remove();
    count += 1;
    $('documents-count').textContent = `${count} document(s)`;
  };
  while (!mine.abort.signal.aborted) {
    try {
      const resp = await api(`/streams/${encodeURIComponent(mine.id)}/events`, {
        headers: { Accept: 'text/event-stream' },
        signal: mine.abort.signal,
      });
      if (!resp.ok) {
        $('documents-count').textContent = (await problem(resp)).error;
        return;
      }
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let ended = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
          const event = { type: 'message', id: '', data: [] };
          for (const line of block.split(/\r?\n/)) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') event.type = value;
            else if (field === 'id') event.id = value;
            else if (field === 'data') event.data.push(value);
          }
          if (event.data.length) onEvent(event.type, event.id, event.data.join('\n'));
          ended ||= event.type === 'end';
        }
      }
      if (ended) return;
    } catch (e) {
      if (e instanceof Unauthorized || mine.abort.signal.aborted) return;
    }
    await sleep(2000); // the connection dropped: follow again
  }
}

// ---- try an image ----

$('image-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const file = $('image-file').files[0];
  const message = $('image-message');
  if (!file) { message.textContent = 'Choose an image first.'; return; }
  const type = file.type || (/\.png$/i.test(file.name) ? 'image/png'
    : /\.bmp$/i.test(file.name) ? 'image/bmp' : 'image/jpeg');
  const model = $('image-model').value;
  message.textContent = `sending ${file.name} to ${model}…`;
  $('image-results').replaceChildren();
  let resp;
  try {
    resp = await api(`/${encodeURIComponent(model)}`, {
      method: 'POST', headers: { 'Content-Type': type }, body: file,
    });
  } catch (e) {
    if (!(e instanceof Unauthorized)) message.textContent = `failed: ${e.message}`;
    return;
  }
  if (resp.status !== 200 && resp.status !== 204) {
    message.textContent = `refused (${resp.status}): ${(await problem(resp)).error}`;
    return;
  }
  const inferences = resp.status === 200 ? (await resp.json()).inferences : [];
  const image = await createImageBitmap(file);
  drawInferences(image, inferences);
  message.textContent = inferences.length ? `${model}: ${inferences.length} found` : `${model}: nothing found`;
});

// The picture at its own size, each entity's box in its label's colour, with its label above.
function drawInferences(image, inferences) {
  const canvas = $('image-canvas');
  const [W, H] = [image.width, image.height];
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const line = Math.max(2, Math.round(Math.min(W, H) / 150));
  const font = Math.max(12, Math.round(H / 30));
  ctx.font = `${font}px sans-serif`;
  ctx.textBaseline = 'top';
  const items = inferences.map((inf) => {
    const thing = inf.entity || inf.classification || {};
    const tag = thing.tag || {};
    const color = colorOf(tag.value);
    const text = `${tag.value} ${Number(tag.confidence).toFixed(2)}`;
    const li = el('li', null, { 'data-label': tag.value, 'data-confidence': tag.confidence, 'data-color': color });
    const swatch = el('span', '', { class: 'swatch' });
    swatch.style.background = color; // CSSOM: the page's policy allows no inline style attribute
    li.append(swatch, el('span', text));
    const b = thing.box;
    if (b) {
      const [x, y] = [Math.round(b.l * W), Math.round(b.t * H)];
      const [w, h] = [Math.round(b.w * W), Math.round(b.h * H)];
      li.dataset.box = [b.l, b.t, b.w, b.h].join(',');
      li.append(el('span', ` at ${x},${y} ${w}×${h} px`));
      // Filled rectangles, not strokes: whole pixels of exactly the colour.
      ctx.fillStyle = color;
      ctx.fillRect(x, y, w, line);
      ctx.fillRect(x, y + h - line, w, line);
      ctx.fillRect(x, y, line, h);
      ctx.fillRect(x + w - line, y, line, h);
      const tw = Math.ceil(ctx.measureText(text).width) + 6;
      const ty = y >= font + 4 ? y - font - 4 : y + line;
      ctx.fillRect(x, ty, tw, font + 4);
      ctx.fillStyle = '#fff';
      ctx.fillText(text, x + 3, ty + 2);
    } else {
      li.append(el('span', ' (the whole image)'));
    }
    return li;
  });
  $('image-results').replaceChildren(...items);
}

// ---- start ----

refreshModels();
refreshStreams();
setInterval(() => { if ($('signin').hidden) refreshStreams(); }, 1000);
setInterval(() => { if ($('signin').hidden) refreshModels(); }, 5000);
