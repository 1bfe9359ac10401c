// The release dashboard: reads the tracker's /api/ with the session cookie
// and draws each app's channels, adoption, build counters and history.
// Everything is built with DOM calls (no HTML strings), so data from the
// tracker is always text.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './app.css';

const $ = (id) => document.getElementById(id);

// el builds an element: attributes (class, aria-*, data-*, ...) and
// children (strings become text).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// Times are shown in the viewer's time zone.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const number = new Intl.NumberFormat();
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

export function formatTime(iso) {
  return dateTime.format(new Date(iso));
}

function time(iso) {
  return el('time', { datetime: iso }, formatTime(iso));
}

function badge(kind, text) {
  return el('span', { class: `badge badge-${kind}` }, text);
}

async function getJSON(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  if (res.status === 401) {
    location.assign(`/dashboard/signin${location.hash}`); // the app chosen, kept through sign-in
    throw new Error('signed out');
  }
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error(`the tracker answered ${res.status} ${res.statusText}, not JSON (a proxy in between?)`);
  }
  if (!res.ok) throw new Error(body.message || res.statusText);
  return body;
}

// Each load of an app, or of its adoption, has a number; what a load gets
// is drawn only while it is the newest, so a slow answer for the app left
// behind never lands under the app chosen since.
const loads = { app: 0, adoption: 0 };
const stale = new Error('stale');

function current(kind, n) {
  if (loads[kind] !== n) throw stale;
}

const api = (app, rest = '') => `/api/apps/${encodeURIComponent(app)}${rest}`;

// table renders rows in a scrollable, labelled region: a wide table stays
// usable on a phone and with a keyboard.
function table(label, headers, rows) {
  const t = el('table', {},
    el('caption', { class: 'visually-hidden' }, label),
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c, i) => (i === 0 ? el('th', { scope: 'row' }, c) : el('td', {}, c)))))));
  return el('div', { class: 'scroll', role: 'region', 'aria-label': `${label} table`, tabindex: 0 }, t);
}

function buildLabel(b) {
  return b ? `${b.version} (${b.id})` : '—';
}

// rolloutCell describes a channel's staged rollout, or says there is none.
export function rolloutCell(r) {
  if (!r) return el('span', { class: 'muted' }, 'none: every device gets the build');
  const halted = r.state === 'halted';
  return el('div', { class: 'rollout', 'data-rollout': r.id },
    el('span', {}, halted
      ? `${r.candidate.version} (${r.candidate.id}) was at ${percent.format(r.percent / 100)} of devices: now offered to none`
      : `${r.candidate.version} (${r.candidate.id}) at ${percent.format(r.percent / 100)} of devices`),
    halted ? null : el('meter', { min: 0, max: 100, value: r.percent, 'aria-label': `rollout ${r.id} percentage` }),
    badge(r.state, r.state),
    r.why ? el('span', { class: 'why' }, `why: ${r.why}`) : null,
    el('span', { class: 'muted' }, `rollout ${r.id}`));
}

function renderChannels(channels) {
  const rows = channels.map((c) => [
    c.name,
    c.build ? buildLabel(c.build) : el('span', { class: 'problem' }, badge('halted', 'not served'), ' ', c.problem || ''),
    c.build ? rolloutCell(c.rollout) : '—',
    c.expires ? time(c.expires) : '—',
    c.sequence ? String(c.sequence) : '—',
  ]);
  $('channels').replaceChildren(channels.length
    ? table('Channels', ['Channel', 'Build', 'Staged rollout', 'Pointer expires', 'Sequence'], rows)
    : el('p', {}, 'No channel is published yet.'));
  for (const tr of $('channels').querySelectorAll('tbody tr')) tr.classList.add('channel');
}

function renderBuilds(builds) {
  const rate = (r) => (r === null || r === undefined ? '' : ` (${percent.format(r)})`);
  const rows = builds.map((b) => [
    b.version, b.build_id || 'unknown build', number.format(b.devices), number.format(b.checks),
    number.format(b.downloads), number.format(b.installs),
    `${number.format(b.failures)}${rate(b.failure_rate)}`, `${number.format(b.rollbacks)}${rate(b.rollback_rate)}`,
  ]);
  $('builds').replaceChildren(builds.length
    ? table('Builds', ['Version', 'Build', 'Devices', 'Checks', 'Downloads', 'Installs', 'Failures', 'Rollbacks'], rows)
    : el('p', {}, 'No device has reported anything yet.'));
}

// historyEntry shows who moved a channel, when, to what; of an entry whose
// signature does not verify, only its sequence and why.
function historyEntry(e) {
  const seq = el('span', { class: 'seq' }, `#${e.sequence}`);
  if (!e.verified) {
    return el('li', { class: 'entry' }, seq, ' ', badge('halted', `not verified${e.problem ? `: ${e.problem}` : ''}`),
      el('span', { class: 'muted' }, ' (contents not shown)'));
  }
  return el('li', { class: 'entry' }, seq, ' ',
    e.change ? el('span', { class: 'change' }, `${e.change}: `) : null,
    time(e.issued), ' ',
    el('span', {}, `${e.by || 'unknown signer'} moved it to ${buildLabel(e.build)}`),
    e.rollout ? el('span', {}, ` with ${e.rollout.candidate.version} at ${e.rollout.percent}% (${e.rollout.state})`) : null,
    e.dropped ? el('span', {}, `, dropping candidate ${buildLabel(e.dropped)}`) : null,
    e.notes ? el('q', {}, e.notes) : null, ' ',
    badge('verified', 'signature verified'));
}

function renderHistory(histories) {
  const parts = histories.map(({ channel, entries }) => el('section', { class: 'history', 'aria-labelledby': `h-${channel}` },
    el('h3', { id: `h-${channel}` }, channel),
    entries.length
      ? el('ol', { reversed: true }, entries.map(historyEntry))
      : el('p', {}, 'No history kept for this channel yet.')));
  $('history').replaceChildren(...parts);
}

// Colours of the series: dark enough for 3:1 against white.
const palette = ['#1f4e8c', '#b3411a', '#2f7d32', '#7b3fa0', '#8a6d00', '#006d77'];
let plot;

function renderAdoption(a) {
  const xs = a.times.map((t) => Date.parse(t) / 1000);
  const day = a.bucket === 'day';
  $('chart-caption').textContent = a.series.length
    ? `Devices that had installed each build, by ${day ? 'day (days from 00:00 UTC)' : 'hour'}, shown in your time zone (${zone}).`
    : 'No device has installed a build yet.';
  const head = ['Start', ...a.series.map((s) => buildLabel({ version: s.version, id: s.build_id || 'unknown' }))];
  $('adoption-table').replaceChildren(a.series.length
    ? table('Adoption', head, xs.map((x, i) => [formatTime(a.times[i]), ...a.series.map((s) => number.format(s.devices[i]))]))
    : el('p', {}, 'No device has installed a build yet.'));
  if (plot) plot.destroy();
  plot = undefined;
  const box = $('chart-plot');
  box.replaceChildren();
  $('chart').dataset.points = '0';
  if (!a.series.length) return;
  const bucket = day ? 86400 : 3600;
  const opts = {
    width: Math.max(280, box.clientWidth),
    height: 260,
    // One bucket alone gets a bucket either side, not an axis of years.
    scales: { x: { time: true, range: (u, min, max) => (xs.length === 1 ? [xs[0] - bucket, xs[0] + bucket] : [min, max]) } },
    hooks: { setScale: [(u, key) => { if (key === 'x') $('chart').dataset.span = String(u.scales.x.max - u.scales.x.min); }] },
    axes: [{ stroke: '#333' }, { stroke: '#333', label: 'devices' }],
    series: [{ label: 'time', value: (u, v) => (v === null ? '' : dateTime.format(new Date(v * 1000))) },
      ...a.series.map((s, i) => ({ label: s.version, stroke: palette[i % palette.length], width: 2, points: { show: true, size: 6 } }))],
  };
  plot = new uPlot(opts, [xs, ...a.series.map((s) => s.devices)], box);
  box.querySelector('canvas')?.setAttribute('aria-hidden', 'true');
  $('chart').dataset.points = String(plot.data[0].length);
}

// The chart follows its box's width (a phone turned, a window resized).
function followWidth() {
  const box = $('chart-plot');
  new ResizeObserver(() => {
    if (plot) plot.setSize({ width: Math.max(280, box.clientWidth), height: 260 });
  }).observe(box);
}

const state = { app: '', bucket: 'hour' };

async function loadAdoption() {
  const n = ++loads.adoption;
  const a = await getJSON(api(state.app, `/adoption?bucket=${state.bucket}`));
  current('adoption', n);
  renderAdoption(a);
}

async function loadApp() {
  const app = state.app;
  const n = ++loads.app;
  delete document.body.dataset.ready;
  $('title').textContent = app;
  document.title = `${app} · deploy releases`;
  $('status').textContent = `Loading ${app}…`;
  for (const id of ['channels', 'builds', 'history']) $(id).replaceChildren(); // nothing of the app before
  $('chart-plot').replaceChildren();
  $('adoption-table').replaceChildren();
  const data = await getJSON(api(app));
  current('app', n);
  renderChannels(data.channels);
  renderBuilds(data.builds);
  const histories = await Promise.all(data.channels.map(async (c) => ({
    channel: c.name,
    entries: (await getJSON(api(app, `/channels/${encodeURIComponent(c.name)}/history`))).entries,
  })));
  current('app', n);
  renderHistory(histories);
  await loadAdoption().catch((e) => {
    if (e !== stale) throw e; // else a newer choice of bucket draws the chart
  });
  current('app', n);
  $('status').textContent = `Updated ${formatTime(data.generated)}.`;
  document.body.dataset.ready = 'true';
}

async function run(step) {
  try {
    await step();
  } catch (e) {
    if (e === stale) return; // a newer load draws the page
    $('status').textContent = `Could not load: ${e.message}`;
    document.body.dataset.ready = 'error';
  }
}

async function start() {
  $('zone').textContent = `Times are in your time zone, ${zone}.`;
  followWidth();
  const { apps } = await getJSON('/api/apps');
  const select = $('app');
  select.replaceChildren(...apps.map((a) => el('option', { value: a }, a)));
  if (!apps.length) { // nothing to choose or show: the menu and sections go
    for (const e of [select.parentElement, ...document.querySelectorAll('main section')]) e.hidden = true;
    $('status').textContent = 'No app is published on this tracker yet.';
    document.body.dataset.ready = 'true';
    return;
  }
  const wanted = new URLSearchParams(location.hash.slice(1)).get('app');
  state.app = apps.includes(wanted) ? wanted : apps[0];
  select.value = state.app;
  select.addEventListener('change', () => {
    state.app = select.value;
    history.replaceState(null, '', `#app=${encodeURIComponent(state.app)}`);
    run(loadApp);
  });
  window.addEventListener('hashchange', () => {
    const app = new URLSearchParams(location.hash.slice(1)).get('app');
    if (apps.includes(app) && app !== state.app) {
      state.app = select.value = app;
      run(loadApp);
    }
  });
  for (const r of document.querySelectorAll('input[name=bucket]')) {
    r.addEventListener('change', () => { state.bucket = r.value; run(loadAdoption); });
  }
  await loadApp();
}

if (typeof document !== 'undefined' && $('main')) run(start);
