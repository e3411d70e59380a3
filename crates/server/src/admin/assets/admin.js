// The Fanfare admin page. Every datum comes from the API with the key the
// operator typed, kept in sessionStorage (this tab only). The live part is
// GET /api/admin/stream read with fetch(): EventSource cannot send
// Authorization.
'use strict';

const KEY_ITEM = 'fanfare-admin-key';
const POINTS = 60; // seconds of rates on the chart
const TAIL_KEPT = 200;
const REFRESH_MS = 3000;

const $ = (id) => document.getElementById(id);
const state = { stream: null, refresh: null, tailChannel: '', chart: { publications: [], deliveries: [] } };

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_ITEM);
  const headers = { Authorization: `Bearer ${key}`, ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers, cache: 'no-store' });
  if (response.status === 401) throw new Unauthorized('wrong API key');
  return response;
}

async function json(path, options) {
  const response = await api(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  stopAll();
  sessionStorage.removeItem(KEY_ITEM);
  $('dashboard').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('node').textContent = '';
}

async function logIn(key) {
  sessionStorage.setItem(KEY_ITEM, key);
  try {
    await json('/api/nodes');
  } catch (error) {
    showLogin(error instanceof Unauthorized ? 'Wrong API key.' : `Cannot reach the server: ${error.message}`);
    return;
  }
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('logout').hidden = false;
  $('login-error').textContent = '';
  startAll();
}

function failed(error) {
  if (error instanceof Unauthorized) {
    showLogin('The API key was refused.');
  } else if (error.name !== 'AbortError') {
    $('stream-status').textContent = `Error: ${error.message}`;
  }
}

// ---------------------------------------------------------------- panels

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(tbody, items, render, empty) {
  tbody.replaceChildren();
  if (items.length === 0) {
    const row = tbody.insertRow();
    const td = cell(row, empty);
    td.colSpan = 6;
    td.className = 'muted';
    return;
  }
  for (const item of items) render(tbody.insertRow(), item);
}

const time = (ms) => new Date(ms).toLocaleTimeString();

async function refreshPanels() {
  try {
    const [nodes, channels, slow, dead] = await Promise.all([
      json('/api/nodes'),
      json('/api/channels'),
      json('/api/admin/slow_consumers'),
      json('/api/webhooks/dead_letters?limit=50'),
    ]);
    $('nodes-note').textContent = nodes.node === null ? 'A single node (no cluster).' : `Answered by ${nodes.node}.`;
    fill($('nodes'), nodes.nodes, (row, n) => {
      cell(row, n.id);
      cell(row, n.advertise || '–');
      cell(row, n.version);
      cell(row, String(n.connections), 'number');
      cell(row, String(n.channels), 'number');
    }, 'No cluster nodes.');
    fill($('channels'), channels.channels, (row, c) => {
      cell(row, c.channel);
      cell(row, String(c.subscribers), 'number');
    }, 'No channel has subscribers.');
    fill($('slow-consumers'), slow.slow_consumers, (row, s) => {
      cell(row, time(s.time_ms));
      cell(row, s.connection);
      cell(row, s.protocol);
      cell(row, `${s.open_s.toFixed(1)} s`, 'number');
    }, 'None since the node started.');
    fill($('dead-letters'), dead.dead_letters, renderDeadLetter, 'No dead letters.');
  } catch (error) {
    failed(error);
  }
}

function renderDeadLetter(row, letter) {
  cell(row, time(letter.time_ms));
  cell(row, letter.app_id);
  cell(row, letter.url);
  cell(row, String((letter.events || []).length), 'number');
  cell(row, letter.error);
  const td = cell(row, '');
  if (!letter.id) {
    td.textContent = 'no id';
    td.className = 'muted';
    return;
  }
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = 'Replay';
  button.className = 'replay';
  button.dataset.id = letter.id;
  button.addEventListener('click', () => replay(letter.id, button));
  td.appendChild(button);
}

async function replay(id, button) {
  button.disabled = true;
  try {
    const body = await json(`/api/webhooks/dead_letters/${encodeURIComponent(id)}/replay`, { method: 'POST' });
    $('replay-result').textContent = `Replayed ${body.events} event(s) of ${body.id}.`;
  } catch (error) {
    if (error instanceof Unauthorized) return failed(error);
    $('replay-result').textContent = `Replay failed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- chart

function push(series, value) {
  series.push(value);
  if (series.length > POINTS) series.shift();
}

function drawChart() {
  const canvas = $('chart');
  const { publications, deliveries } = state.chart;
  canvas.dataset.publications = JSON.stringify(publications);
  canvas.dataset.deliveries = JSON.stringify(deliveries);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const top = Math.max(1, ...publications, ...deliveries);
  const pad = 24;
  g.strokeStyle = '#dfe3e8';
  g.fillStyle = '#6b7480';
  g.font = '11px system-ui, sans-serif';
  g.beginPath();
  g.moveTo(pad, 4);
  g.lineTo(pad, height - pad);
  g.lineTo(width - 4, height - pad);
  g.stroke();
  g.fillText(String(top), 2, 12);
  g.fillText('0', 2, height - pad);
  const x = (i) => pad + ((width - pad - 4) * i) / (POINTS - 1);
  const y = (v) => height - pad - ((height - pad - 8) * v) / top;
  for (const [series, color] of [[publications, '#2f6fdf'], [deliveries, '#e0822f']]) {
    const offset = POINTS - series.length;
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    series.forEach((v, i) => (i === 0 ? g.moveTo(x(i + offset), y(v)) : g.lineTo(x(i + offset), y(v))));
    g.stroke();
  }
}

function showStats(stats) {
  $('node').textContent = stats.node ? `node ${stats.node}` : 'single node';
  $('connections').textContent = String(stats.connections);
  $('subscriptions').textContent = String(stats.subscriptions);
  $('channel-count').textContent = String(stats.channels);
  $('publications-rate').textContent = String(stats.publications_per_s);
  $('deliveries-rate').textContent = String(stats.deliveries_per_s);
  $('slow-total').textContent = String(stats.slow_consumer_disconnects);
  if (stats.tail_dropped > 0) {
    $('tail-status').textContent = `Tailing ${state.tailChannel}: ${stats.tail_dropped} publication(s) dropped (this page fell behind).`;
  }
  push(state.chart.publications, stats.publications_per_s);
  push(state.chart.deliveries, stats.deliveries_per_s);
  drawChart();
}

// ---------------------------------------------------------------- stream

function showPublication(publication) {
  const list = $('tail');
  const item = document.createElement('li');
  const event = publication.event ? ` ${publication.event}` : '';
  const offset = publication.offset === undefined ? 'ephemeral' : `#${publication.offset}`;
  item.textContent = `${time(publication.time)} ${offset}${event} ${JSON.stringify(publication.data)}`;
  list.prepend(item);
  while (list.children.length > TAIL_KEPT) list.lastChild.remove();
}

function onEvent(name, data) {
  const body = JSON.parse(data);
  if (name === 'stats') showStats(body);
  else if (name === 'publication') showPublication(body);
  else if (name === 'tail_closed') $('tail-status').textContent = `The tail of ${body.channel} was closed by the server.`;
}

// Server-sent events: blocks separated by a blank line, `event:` and
// `data:` lines (several data lines join with "\n").
function parseBlock(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length > 0) onEvent(name, data.join('\n'));
}

async function readStream(channel, abort) {
  const path = channel ? `/api/admin/stream?channel=${encodeURIComponent(channel)}` : '/api/admin/stream';
  const response = await api(path, { signal: abort.signal });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body && body.error ? body.error.message : `HTTP ${response.status}`);
  }
  $('stream-status').textContent = 'Live.';
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      parseBlock(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
  throw new Error('the server ended the stream');
}

function openStream(channel) {
  if (state.stream) state.stream.abort();
  const abort = new AbortController();
  state.stream = abort;
  state.tailChannel = channel;
  $('tail-status').textContent = channel ? `Tailing ${channel}.` : '';
  readStream(channel, abort).catch((error) => {
    if (state.stream !== abort) return;
    failed(error);
    if (error instanceof Unauthorized || error.name === 'AbortError') return;
    // Reconnect after a pause (the node restarted, a proxy timed out).
    setTimeout(() => state.stream === abort && openStream(channel), 2000);
  });
}

function startAll() {
  openStream('');
  refreshPanels();
  state.refresh = setInterval(refreshPanels, REFRESH_MS);
}

function stopAll() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  clearInterval(state.refresh);
  state.refresh = null;
}

// ---------------------------------------------------------------- wiring

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    logIn($('key').value.trim());
    $('key').value = '';
  });
  $('logout').addEventListener('click', () => showLogin(''));
  $('tail-form').addEventListener('submit', (event) => {
    event.preventDefault();
    $('tail').replaceChildren();
    openStream($('tail-channel').value.trim());
  });
  $('tail-stop').addEventListener('click', () => openStream(''));
  const key = sessionStorage.getItem(KEY_ITEM);
  if (key) logIn(key);
  else showLogin('');
});
