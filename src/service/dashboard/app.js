// retort dashboard: a client of the /v1 JSON API (docs/service.md). No inline script, no
// third-party code; the bearer token lives in sessionStorage only, never in a URL.
'use strict';

const TOKEN_KEY = 'retort.token';
const RUN_POLL_MS = 1000;
const HOUR_MS = 3600 * 1000;
const MAX_SCAN_HOPS = 50;  // × 20,000 rows scanned per request by the server

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
const svgEl = (tag, attrs) => {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
};

// ---- the API -------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers['Authorization'] = 'Bearer ' + token;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store', credentials: 'omit' });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401) showAuth(true);
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || 'http_error', err.message || ('HTTP ' + res.status));
  }
  return data;
}

function showAuth(on) {
  $('auth').hidden = !on;
  if (on && document.activeElement !== $('auth-token')) $('auth-token').focus();
}

function say(id, text, bad) {
  const p = $(id);
  p.textContent = text;
  p.classList.toggle('error-text', !!bad);
}

// ---- formatting ------------------------------------------------------------------------
const fmt = (n, d = 1) => (n == null || !isFinite(n)) ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: d });
function fmtDuration(s) {
  if (s == null || !isFinite(s)) return 'unknown';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + sec + 's';
}
const fmtCost = (c) => c == null ? '–' : '$' + Number(c).toFixed(4);

// ---- runs ------------------------------------------------------------------------------
const cards = new Map();  // run name -> {root, fields..., samples: [], lastT}

function fact(dl, label) {
  const dd = el('dd');
  dl.append(el('div', {}, el('dt', { text: label }), dd));
  return dd;
}

function makeChart(title, names) {
  const svg = svgEl('svg', { class: 'chart', viewBox: '0 0 600 140', preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  const legend = el('div', { class: 'legend' });
  names.forEach((n, i) => legend.append(el('span', { class: 's' + i, text: n + ' ' })));
  const fig = el('figure', {}, svg, el('figcaption', { text: title + ' (last hour)' }), legend);
  return { fig, svg, title, names };
}

function drawChart(chart, points) {  // points: [{t, v: [a, b]}]
  const svg = chart.svg;
  while (svg.firstChild) svg.firstChild.remove();
  const W = 600, H = 140, L = 40, B = 14;
  const now = Date.now(), t0 = now - HOUR_MS;
  let max = 0;
  for (const p of points) for (const v of p.v) if (isFinite(v)) max = Math.max(max, v);
  if (max <= 0) max = 1;
  svg.append(svgEl('line', { class: 'axis', x1: L, y1: H - B, x2: W, y2: H - B }));
  svg.append(svgEl('line', { class: 'axis', x1: L, y1: 0, x2: L, y2: H - B }));
  const label = (x, y, s, anchor) => { const t = svgEl('text', { x, y, 'text-anchor': anchor || 'start' }); t.textContent = s; svg.append(t); };
  label(L - 3, 10, fmt(max), 'end');
  label(L - 3, H - B, '0', 'end');
  label(L, H - 2, '−60 min');
  label(W - 2, H - 2, 'now', 'end');
  chart.names.forEach((_, i) => {
    const pts = points.filter(p => p.t >= t0).map(p => {
      const x = L + (W - L) * (p.t - t0) / HOUR_MS;
      const y = (H - B) - (H - B - 4) * (p.v[i] / max);
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    if (pts.length) svg.append(svgEl('polyline', { class: 's' + i, points: pts.join(' ') }));
  });
  const last = points[points.length - 1];
  svg.setAttribute('aria-label', chart.title + ': ' + (last ? chart.names.map((n, i) => n + ' ' + fmt(last.v[i])).join(', ') : 'no samples yet'));
}

function makeCard(name) {
  const c = { samples: [], lastT: 0 };
  c.root = el('article', { class: 'run', 'data-run': name, 'aria-label': 'Run ' + name });
  c.state = el('span', { class: 'state' });
  c.head = el('div', { class: 'run-head' }, el('h3', { text: name }), c.state);
  c.meta = el('span', { class: 'meta' });
  c.head.append(c.meta);
  c.progress = el('progress', { max: '1', value: '0', 'aria-label': 'Progress of run ' + name });
  c.progressText = el('span', { class: 'progress-text' });
  const dl = el('dl', { class: 'facts' });
  c.rates = fact(dl, 'Rates');
  c.conc = fact(dl, 'Concurrency limit');
  c.gov = fact(dl, 'Governor');
  c.eta = fact(dl, 'ETA');
  c.cost = fact(dl, 'Cost');
  c.requests = fact(dl, 'Requests');
  c.stop = fact(dl, 'Stop reason');
  c.errors = el('ul', { class: 'errors', 'aria-label': 'Last errors of run ' + name });
  c.pause = el('button', { type: 'button', text: 'Pause', onclick: () => control(name, 'pause') });
  c.resume = el('button', { type: 'button', text: 'Resume', onclick: () => control(name, 'resume') });
  c.cancel = el('button', { type: 'button', class: 'danger', text: 'Cancel…', onclick: () => confirmCancel(name) });
  c.browse = el('button', { type: 'button', text: 'Browse responses', onclick: () => { $('browse-run').value = name; browse(0, true); $('browser-title').scrollIntoView(); } });
  c.msg = el('span', { role: 'status', 'aria-live': 'polite' });
  c.rateChart = makeChart('Requests/s and tokens/s ÷ 100 of ' + name, ['requests/s', 'tokens/s ÷ 100']);
  c.errChart = makeChart('429s and failed requests per sample of ' + name, ['429s', 'failures']);
  c.root.append(c.head,
    el('div', { class: 'progress' }, c.progress, c.progressText),
    dl, c.errors,
    el('div', { class: 'row' }, c.pause, c.resume, c.cancel, c.browse, c.msg),
    el('div', { class: 'charts' }, c.rateChart.fig, c.errChart.fig));
  return c;
}

function updateCard(c, r) {
  const j = r.jobs || { done: 0, total: 0, failed: 0, pending: 0, leased: 0 };
  c.root.dataset.state = r.state;
  c.state.textContent = r.state;
  c.meta.textContent = r.model + ' · set ' + r.set + ' · ' + r.provider;
  const finished = j.done + j.failed;
  c.progress.max = Math.max(1, j.total);
  c.progress.value = finished;
  const pct = j.total ? Math.floor(100 * finished / j.total) : 0;
  c.progress.setAttribute('aria-valuetext', pct + '%: ' + j.done + ' done, ' + j.failed + ' failed of ' + j.total);
  c.progressText.textContent = pct + '% — ' + fmt(j.done, 0) + ' done / ' + fmt(j.total, 0) + ' total, ' +
    fmt(j.failed, 0) + ' failed, ' + fmt(j.pending + j.leased, 0) + ' pending';
  const rates = r.rates || {};
  c.rates.textContent = fmt(rates.requests_per_s) + ' req/s, ' + fmt(rates.tokens_per_s, 0) + ' tok/s';
  c.conc.textContent = r.concurrency_limit != null ? fmt(r.concurrency_limit, 0) + ' (' + fmt(r.in_flight, 0) + ' in flight)' : '–';
  c.gov.textContent = rates.governor_rpm != null ? (rates.governor_rpm ? fmt(rates.governor_rpm, 0) + ' rpm' : 'unlimited rpm') + ', ' +
    (rates.governor_tpm ? fmt(rates.governor_tpm, 0) + ' tpm' : 'unlimited tpm') : '–';
  c.eta.textContent = r.harvesting ? fmtDuration(r.eta_s) : '–';
  c.cost.textContent = fmtCost(r.cost) + (r.max_cost ? ' of ' + fmtCost(r.max_cost) + ' (--max-cost)' : ' (no --max-cost)');
  const q = r.requests;
  c.requests.textContent = q ? fmt(q.total, 0) + ' (' + fmt(q.rate_limited, 0) + ' × 429, ' + fmt(q.failed, 0) + ' failed, ' + fmt(q.retried, 0) + ' retried)' : '–';
  c.stop.textContent = r.stop_reason || '–';
  c.errors.replaceChildren(...(r.last_errors || []).map(e =>
    el('li', { text: (e.http_status ? 'HTTP ' + e.http_status + ' ' : '') + e.code + ': ' + e.message })));
  const live = r.harvesting;
  c.pause.disabled = !live || r.state !== 'running';
  c.resume.disabled = live || r.state === 'done' || r.state === 'cancelled';
  c.cancel.disabled = r.state === 'done' || r.state === 'cancelled' || r.state === 'cancelling';
}

async function refreshSamples(name, c) {
  const s = await api('/v1/runs/' + encodeURIComponent(name) + '/samples?since=' + c.lastT);
  if (s.samples.length) c.lastT = s.samples[s.samples.length - 1].t_ms;
  let prev = c.samples.length ? c.samples[c.samples.length - 1] : null;
  for (const x of s.samples) {
    x.d429 = prev ? Math.max(0, x.rate_limited - prev.rate_limited) : 0;
    x.dfail = prev ? Math.max(0, x.failed - prev.failed) : 0;
    c.samples.push(x);
    prev = x;
  }
  const cut = Date.now() - HOUR_MS;
  while (c.samples.length && c.samples[0].t_ms < cut) c.samples.shift();
  drawChart(c.rateChart, c.samples.map(x => ({ t: x.t_ms, v: [x.requests_per_s, x.tokens_per_s / 100] })));
  drawChart(c.errChart, c.samples.map(x => ({ t: x.t_ms, v: [x.d429, x.dfail] })));
}

let knownRuns = [];
let tick = 0;
async function refreshRuns() {
  const data = await api('/v1/runs');
  const runs = data.runs;
  $('runs-empty').hidden = runs.length > 0;
  for (const r of runs) {
    let c = cards.get(r.name);
    if (!c) { c = makeCard(r.name); cards.set(r.name, c); $('runs').append(c.root); }
    updateCard(c, r);
    if (tick % 2 === 0 && (r.harvesting || c.lastT === 0)) await refreshSamples(r.name, c);
  }
  tick++;
  const names = runs.map(r => r.name);
  if (names.join('\n') !== knownRuns.join('\n')) {
    knownRuns = names;
    for (const id of ['browse-run', 'export-run']) {
      const sel = $(id), cur = sel.value;
      sel.replaceChildren(...names.map(n => el('option', { value: n, text: n })));
      if (names.includes(cur)) sel.value = cur;
    }
  }
  say('status-line', 'Updated ' + new Date().toLocaleTimeString() + ' · ' + runs.length + ' run(s)');
}

async function control(name, action) {
  const c = cards.get(name);
  c.msg.textContent = action + '…';
  try {
    const r = await api('/v1/runs/' + encodeURIComponent(name) + '/' + action, { method: 'POST', json: {} });
    updateCard(c, r);
    c.msg.textContent = action + ': now ' + r.state;
  } catch (e) {
    c.msg.textContent = action + ' failed: ' + e.message;
  }
}

function confirmCancel(name) {
  const d = $('confirm-dialog');
  $('confirm-text').textContent = 'Cancelling run ' + name + ' is final: it cannot be resumed. Its stored answers stay.';
  d.returnValue = '';
  d.onclose = () => { if (d.returnValue === 'yes') control(name, 'cancel'); };
  d.showModal();
}

// ---- response browser ---------------------------------------------------------------------
let cursors = [0];  // `after` of each page shown so far (keyset pagination)
let nextAfter = null;

function promptText(messages) {
  if (!Array.isArray(messages)) return String(messages);
  return messages.map(m => (messages.length > 1 ? m.role + ': ' : '') + (typeof m.content === 'string' ? m.content : JSON.stringify(m.content))).join('\n');
}

async function showRaw(run, id) {
  const r = await api('/v1/runs/' + encodeURIComponent(run) + '/responses/' + id);
  let text = r.raw_body;
  try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: as stored */ }
  $('raw-title').textContent = 'Raw stored body of job ' + id;
  $('raw-body').textContent = text;
  $('raw-dialog').showModal();
}

async function browse(after, reset) {
  const run = $('browse-run').value;
  if (!run) { say('browse-info', 'No run to browse yet.'); return; }
  if (reset) cursors = [0];
  const params = new URLSearchParams({ status: $('browse-status').value, after: String(after), limit: '25' });
  if ($('browse-finish').value) params.set('finish_reason', $('browse-finish').value);
  if ($('browse-q').value) params.set('q', $('browse-q').value);
  say('browse-info', 'Loading…');
  let page;
  try {
    page = await api('/v1/runs/' + encodeURIComponent(run) + '/responses?' + params);
    // A rare filter match: the server scans a bounded number of rows per request, so go on
    // from its cursor until rows turn up (at most MAX_SCAN_HOPS requests, then let the user go on).
    for (let hops = 0; page.responses.length === 0 && page.next_after != null && hops < MAX_SCAN_HOPS; hops++) {
      after = page.next_after;
      params.set('after', String(after));
      say('browse-info', 'Searching… (from job ' + after + ')');
      page = await api('/v1/runs/' + encodeURIComponent(run) + '/responses?' + params);
    }
    cursors[cursors.length - 1] = after;
  } catch (e) {
    say('browse-info', 'Could not load responses: ' + e.message, true);
    return;
  }
  const failed = $('browse-status').value === 'failed';
  const rows = page.responses.map(r => el('tr', { 'data-job': String(r.job_id) },
    el('td', { class: 'num', text: r.job_id + (r.sample ? ' #' + r.sample : '') }),
    el('td', { class: 'text prompt', text: promptText(r.messages) }),
    el('td', { class: 'text answer', text: failed ? r.error : r.content }),
    el('td', { class: 'text', text: failed ? '' : (r.reasoning || '') }),
    el('td', { text: failed ? 'failed (HTTP ' + (r.http_status || '–') + ')' : r.finish_reason }),
    el('td', { class: 'num', text: failed ? '' : fmt(r.tokens.prompt, 0) + ' / ' + fmt(r.tokens.completion, 0) }),
    el('td', { class: 'num', text: failed ? '' : fmt(r.latency_ms, 0) + ' ms' }),
    el('td', {}, failed ? null : el('button', { type: 'button', text: 'Show', 'aria-label': 'Show raw body of job ' + r.job_id,
      onclick: () => showRaw(run, r.job_id).catch(e => say('browse-info', e.message, true)) }))));
  $('browse-rows').replaceChildren(...rows);
  nextAfter = page.next_after;
  $('browse-next').disabled = nextAfter == null;
  $('browse-prev').disabled = cursors.length <= 1;
  say('browse-info', 'Page ' + cursors.length + ': ' + rows.length + ' row(s), ' + page.scanned + ' examined' +
    (nextAfter == null ? ', end of run.' : '.'));
}

// ---- exports, prompt sets ------------------------------------------------------------------
async function pollExport(id) {
  for (let i = 0; i < 3600; i++) {
    const e = await api('/v1/exports/' + id);
    if (e.state !== 'running') {
      say('export-info', e.state === 'done' ? 'Export ' + id + ' done: ' + e.summary : 'Export ' + id + ' failed: ' + (e.error ? e.error.message : ''), e.state !== 'done');
      return;
    }
    say('export-info', 'Export ' + id + (e.queued ? ' waiting for a worker…' : ' running…'));
    await new Promise(r => setTimeout(r, 1000));
  }
}

async function startExport(ev) {
  ev.preventDefault();
  const body = { run: $('export-run').value, out: $('export-out').value, format: $('export-format').value,
    compress: $('export-compress').value };
  if ($('export-reasoning').value) body.reasoning = $('export-reasoning').value;
  if ($('export-split').value) body.split = $('export-split').value;
  if ($('export-keep-truncated').checked) body.keep_truncated = true;
  if ($('export-keep-duplicates').checked) body.keep_duplicates = true;
  try {
    const e = await api('/v1/exports', { method: 'POST', json: body });
    say('export-info', 'Export ' + e.id + ' started.');
    pollExport(e.id).catch(err => say('export-info', err.message, true));
  } catch (e) {
    say('export-info', 'Export refused: ' + e.message, true);
  }
}

async function refreshSets() {
  const data = await api('/v1/prompt-sets');
  $('sets-rows').replaceChildren(...data.prompt_sets.map(s => el('tr', {},
    el('td', { text: s.name }), el('td', { class: 'num', text: fmt(s.prompts, 0) }),
    el('td', { text: new Date(s.created_at_ms).toLocaleString() }))));
}

async function upload(ev) {
  ev.preventDefault();
  const file = $('upload-file').files[0];
  const name = $('upload-name').value;
  if (!file) return;
  say('upload-info', 'Uploading ' + file.name + '…');
  try {
    const s = await api('/v1/prompt-sets/' + encodeURIComponent(name), {
      method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body: file });
    say('upload-info', 'Set ' + name + ': ' + s.imported + ' imported, ' + s.duplicates + ' duplicates, ' + s.rejected + ' rejected' +
      (s.errors && s.errors.length ? ' (first: ' + s.errors[0] + ')' : '') + '.');
    await refreshSets();
  } catch (e) {
    say('upload-info', 'Upload refused: ' + e.message, true);
  }
}

// ---- start ------------------------------------------------------------------------------
// Polls every second, or less often when the server is slow to answer (a big database):
// the next poll waits at least four times as long as the last one took.
let pollDelay = RUN_POLL_MS;
async function loop() {
  const started = performance.now();
  try {
    await refreshRuns();
  } catch (e) {
    if (e.status !== 401) say('status-line', 'Cannot reach the server: ' + e.message, true);
    else say('status-line', 'Waiting for the bearer token.', true);
  }
  pollDelay = Math.max(RUN_POLL_MS, 4 * (performance.now() - started));
  setTimeout(loop, pollDelay);
}

document.addEventListener('DOMContentLoaded', () => {
  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('auth-token').value);
    $('auth-token').value = '';
    showAuth(false);
    refreshSets().catch(() => {});
  });
  $('browse-form').addEventListener('submit', (ev) => { ev.preventDefault(); browse(0, true); });
  $('browse-first').addEventListener('click', () => browse(0, true));
  $('browse-next').addEventListener('click', () => { if (nextAfter != null) { cursors.push(nextAfter); browse(nextAfter); } });
  $('browse-prev').addEventListener('click', () => { if (cursors.length > 1) { cursors.pop(); browse(cursors[cursors.length - 1]); } });
  $('export-form').addEventListener('submit', startExport);
  $('upload-form').addEventListener('submit', upload);
  $('browse-next').disabled = true;
  $('browse-prev').disabled = true;
  refreshSets().catch(() => {});
  loop();
});
