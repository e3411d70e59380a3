// Test harness for the Pusher compatibility suite: starts the real fanfare
// binary on 127.0.0.1:0, a local auth endpoint and webhook receiver that use
// the `pusher` server SDK, and builds real pusher-js clients against them.
//
// Every wait in this file is event driven with a timeout that rejects; none
// of it sleeps to synchronise.

import { spawn } from 'node:child_process';
import { after, before } from 'node:test';
import { createInterface } from 'node:readline';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import PusherClient from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';

export { PusherClient, PusherServer, WebSocket };

// ---------------------------------------------------------------------------
// Constants

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = process.env.FANFARE_BIN
  ? path.resolve(process.env.FANFARE_BIN)
  : path.join(REPO_ROOT, 'target', 'debug', 'fanfare');

/** Multiply every timeout (slow machines, debug builds under load). */
const SCALE = Number(process.env.FANFARE_JS_TIMEOUT_SCALE || '1') || 1;
export const T = {
  start: 20_000 * SCALE, // binary prints its "listening" line
  stop: 10_000 * SCALE, // binary exits after SIGTERM (grace is 1 s here)
  connect: 10_000 * SCALE, // pusher-js reaches "connected"
  event: 5_000 * SCALE, // an event that should follow promptly
  held: 10_000 * SCALE, // webhooks held 3 s by the server (vacated, member_removed)
  test: 30_000 * SCALE, // default per-test timeout
  hook: 40_000 * SCALE, // before/after hooks
};

export const API_KEY = 'fanfare-js-suite-api-key-0123456789';

/** The default Pusher app used by most files (configured through env vars). */
export const APP = Object.freeze({ id: 'app-1', key: 'key-1', secret: 'secret-1' });

/** 32 random bytes, base64: the encrypted-channel master key (SDK side only). */
export const MASTER_KEY_B64 = crypto.randomBytes(32).toString('base64');

// ---------------------------------------------------------------------------
// Resource tracking: everything started here is stopped on close(), and any
// fanfare child still alive when this process exits is killed.

const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

/** Where the run script wants pid files of started servers (for its EXIT trap). */
const PID_DIR = process.env.FANFARE_JS_PID_DIR || null;

// ---------------------------------------------------------------------------
// Generic waiting

/**
 * Resolve when `register(resolve, reject)` calls resolve, reject on its
 * reject or after `timeoutMs`. `register` may return an unbind function,
 * called once the wait settles. `label` may be a string or a function
 * (evaluated at timeout, for diagnostics).
 */
export function waitFor(label, timeoutMs, register) {
  const promise = new Promise((resolve, reject) => {
    let settled = false;
    let cleanup = null;
    const finish = (fn) => (value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (cleanup) cleanup();
      fn(value);
    };
    const timer = setTimeout(() => {
      const what = typeof label === 'function' ? label() : label;
      finish(reject)(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    let c;
    try {
      c = register(finish(resolve), finish(reject));
    } catch (e) {
      finish(reject)(e);
      return;
    }
    if (typeof c === 'function') {
      if (settled) c();
      else cleanup = c;
    }
  });
  // Waits are often created before the action that satisfies them and awaited
  // after; if the test fails in between, their later rejection is not news.
  promise.catch(() => {});
  return promise;
}

/**
 * Wait until `predicate(item)` holds for an item of a growing array `list`,
 * starting at index `from`. `subscribe(fn)` must call fn() whenever an item
 * is appended and return an unsubscribe function. Resolves with the item.
 */
function waitInList(label, list, predicate, { from = 0, timeout = T.event }, subscribe) {
  let index = from;
  return waitFor(label, timeout, (resolve) => {
    const scan = () => {
      for (; index < list.length; index++) {
        if (predicate(list[index])) {
          resolve(list[index]);
          return true;
        }
      }
      return false;
    };
    if (scan()) return undefined;
    return subscribe(scan);
  });
}

/** A tiny observable array: push() notifies listeners. */
class Log extends Array {
  constructor() {
    super();
    Object.defineProperty(this, 'listeners', { value: new Set(), enumerable: false });
  }
  static get [Symbol.species]() {
    return Array;
  }
  add(item) {
    this.push(item);
    for (const l of [...this.listeners]) l();
  }
  watch(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  waitFor(label, predicate, opts = {}) {
    return waitInList(label, this, predicate, opts, (fn) => this.watch(fn));
  }
}

// ---------------------------------------------------------------------------
// The fanfare binary

/**
 * THE one place that knows the TOML shape of Pusher apps and webhooks.
 * apps: [{ id, key, secret, clientEvents, webhooks: [{ url, events }] }]
 */
export function pusherAppsToml(apps) {
  const q = (s) => JSON.stringify(String(s)); // a JSON string is a valid TOML basic string here
  let out = '';
  for (const app of apps) {
    out += '[[pusher.apps]]\n';
    out += `id = ${q(app.id)}\nkey = ${q(app.key)}\nsecret = ${q(app.secret)}\n`;
    out += `client_events = ${app.clientEvents ? 'true' : 'false'}\n`;
    for (const hook of app.webhooks ?? []) {
      out += '[[pusher.apps.webhooks]]\n';
      out += `url = ${q(hook.url)}\nevents = [${hook.events.map(q).join(', ')}]\n`;
    }
    out += '\n';
  }
  return out;
}

/**
 * Start `fanfare serve` on 127.0.0.1:0 with a fresh data directory.
 *
 * Options:
 * - app: the Pusher app ({id,key,secret}), default APP
 * - clientEvents: boolean (default true)
 * - webhooks: [{url, events}] — when given, the app is configured in a TOML
 *   file (pusherAppsToml) instead of FANFARE_PUSHER_APP_* env vars
 * - configToml: extra TOML appended to the generated file
 * - env: extra environment variables
 * - dataDir: an existing data directory to use (and keep) instead of a fresh
 *   one, for a restart on the same data
 */
export async function startServer({ app = APP, clientEvents = true, webhooks = null, configToml = '', env = {}, dataDir: keptDataDir = null } = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`fanfare binary not found at ${BIN} (run \`cargo build -p fanfare\` or set FANFARE_BIN)`);
  }
  const dir = fs.mkdtempSync(path.join(process.env.FANFARE_JS_TMP || os.tmpdir(), 'fanfare-js-'));
  const dataDir = keptDataDir ?? path.join(dir, 'data');
  if (!keptDataDir) fs.mkdirSync(dataDir);

  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('FANFARE_')) childEnv[k] = v; // nothing from the caller's FANFARE_* leaks in
  }
  Object.assign(childEnv, {
    FANFARE_API_KEY: API_KEY,
    FANFARE_SHUTDOWN_GRACE: '1s',
    FANFARE_DURABILITY: 'buffered',
    FANFARE_LOG: process.env.FANFARE_JS_SERVER_LOG || 'warn',
    NO_COLOR: '1',
  });

  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir];
  let toml = configToml || '';
  if (webhooks) {
    toml = pusherAppsToml([{ ...app, clientEvents, webhooks }]) + toml;
  } else {
    Object.assign(childEnv, {
      FANFARE_PUSHER_APP_ID: app.id,
      FANFARE_PUSHER_APP_KEY: app.key,
      FANFARE_PUSHER_APP_SECRET: app.secret,
      FANFARE_PUSHER_APP_CLIENT_EVENTS: clientEvents ? 'true' : 'false',
    });
  }
  if (toml) {
    const configPath = path.join(dir, 'fanfare.toml');
    fs.writeFileSync(configPath, toml);
    args.push('--config', configPath);
  }
  Object.assign(childEnv, env);

  const child = spawn(BIN, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  const pidFile = PID_DIR && child.pid ? path.join(PID_DIR, String(child.pid)) : null;
  if (pidFile) {
    try {
      fs.writeFileSync(pidFile, `${child.pid}\n`);
    } catch {}
  }

  let stderr = '';
  const echo = process.env.FANFARE_JS_SERVER_STDERR === '1';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    if (echo) process.stderr.write(chunk);
    stderr = (stderr + chunk).slice(-16_384);
  });
  const stdoutLines = [];
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => stdoutLines.push(line));

  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      liveChildren.delete(child);
      if (pidFile) fs.rmSync(pidFile, { force: true });
      resolve({ code, signal });
    });
  });
  let exitInfo = null;
  exited.then((info) => {
    exitInfo = info;
  });

  let port;
  try {
    port = await waitFor(
      () => `"fanfare listening on" from ${BIN}; stdout so far: ${JSON.stringify(stdoutLines)}; stderr tail:\n${stderr}`,
      T.start,
      (resolve, reject) => {
        const onLine = (line) => {
          const m = /^fanfare listening on 127\.0\.0\.1:(\d+)$/.exec(line.trim());
          if (m) resolve(Number(m[1]));
        };
        const onExit = (code, signal) =>
          reject(new Error(`fanfare exited before listening (code ${code}, signal ${signal}); stderr:\n${stderr}`));
        const onError = (err) => reject(new Error(`cannot start ${BIN}: ${err.message}`));
        for (const line of stdoutLines) onLine(line);
        rl.on('line', onLine);
        child.on('exit', onExit);
        child.on('error', onError);
        return () => {
          rl.off('line', onLine);
          child.off('exit', onExit);
          child.off('error', onError);
        };
      },
    );
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const server = {
    port,
    host: '127.0.0.1',
    app,
    apiKey: API_KEY,
    dir,
    child,
    httpUrl: `http://127.0.0.1:${port}`,
    get stderr() {
      return stderr;
    },
    get exited() {
      return exitInfo;
    },
    /**
     * SIGTERM, then wait for the process to exit by itself. Falls back to
     * SIGKILL after T.stop. Resolves { code, signal, bySelf }.
     */
    async stop() {
      if (exitInfo) return { ...exitInfo, bySelf: true };
      child.kill('SIGTERM');
      let bySelf = true;
      const timer = setTimeout(() => {
        bySelf = false;
        child.kill('SIGKILL');
      }, T.stop);
      const info = await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      return { ...info, bySelf };
    },
    /** SIGKILL (a crash: nothing is closed cleanly), then wait for the exit. */
    async kill() {
      if (!exitInfo) child.kill('SIGKILL');
      const info = await exited;
      fs.rmSync(dir, { recursive: true, force: true });
      return info;
    },
  };
  return server;
}

// ---------------------------------------------------------------------------
// Small HTTP helpers

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

function closeHttp(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
  res.end(text);
}

// ---------------------------------------------------------------------------
// SDK (pusher server library)

/** A `pusher` SDK instance for `app` talking to `server`. */
export function sdkFor(server, app = server.app, extra = {}) {
  return new PusherServer({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: '127.0.0.1',
    port: String(server.port),
    useTLS: false,
    encryptionMasterKeyBase64: MASTER_KEY_B64,
    timeout: T.event,
    ...extra,
  });
}

// ---------------------------------------------------------------------------
// Auth endpoint (what an application backend does, with the official SDK)

/**
 * A local auth server. pusher-js posts form data (socket_id, channel_name)
 * plus the `params` configured in createClient:
 * - user: JSON {id, info?, watchlist?}
 * - mode: "ok" (default) | "forge" (signed with a wrong secret) |
 *         "deny" (HTTP 403) | "no-channel-data" (presence without channel_data)
 */
export async function startAuthServer(app = APP) {
  const signer = new PusherServer({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    encryptionMasterKeyBase64: MASTER_KEY_B64,
  });
  const forger = new PusherServer({
    appId: app.id,
    key: app.key,
    secret: `${app.secret}-WRONG`,
    encryptionMasterKeyBase64: MASTER_KEY_B64,
  });
  const requests = new Log();
  const srv = http.createServer(async (req, res) => {
    try {
      const form = new URLSearchParams(await readBody(req));
      const socketId = form.get('socket_id');
      const mode = form.get('mode') || 'ok';
      const user = JSON.parse(form.get('user') || '{}');
      const sdk = mode === 'forge' ? forger : signer;
      const url = new URL(req.url, 'http://x');
      requests.add({ path: url.pathname, socketId, mode, user, channel: form.get('channel_name') });
      if (mode === 'deny') return sendJson(res, 403, { error: 'denied by test' });
      if (url.pathname === '/channel-auth') {
        const channel = form.get('channel_name');
        const presence = channel.startsWith('presence-') && mode !== 'no-channel-data';
        const body = presence
          ? sdk.authorizeChannel(socketId, channel, { user_id: user.id, user_info: user.info ?? {} })
          : sdk.authorizeChannel(socketId, channel);
        return sendJson(res, 200, body);
      }
      if (url.pathname === '/user-auth') {
        const userData = { id: user.id };
        if (user.info !== undefined) userData.user_info = user.info;
        if (user.watchlist !== undefined) userData.watchlist = user.watchlist;
        if (typeof user.id === 'number') {
          // The `pusher` SDK refuses non-string ids; Laravel's broadcaster
          // signs its integer ids as they are.
          const secret = mode === 'forge' ? `${app.secret}-WRONG` : app.secret;
          return sendJson(res, 200, laravelUserAuth(app.key, secret, socketId, userData));
        }
        return sendJson(res, 200, sdk.authenticateUser(socketId, userData));
      }
      return sendJson(res, 404, { error: 'not found' });
    } catch (e) {
      return sendJson(res, 500, { error: String(e?.stack || e) });
    }
  });
  const port = await listen(srv);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => closeHttp(srv),
  };
}

/**
 * What Laravel's Pusher broadcaster answers a user authentication with:
 * `user_data` is the JSON of the user array (an integer id stays a number),
 * signed over `<socket_id>::user::<user_data>`.
 */
export function laravelUserAuth(key, secret, socketId, userData) {
  const text = JSON.stringify(userData);
  const signature = crypto.createHmac('sha256', secret).update(`${socketId}::user::${text}`).digest('hex');
  return { auth: `${key}:${signature}`, user_data: text };
}

// ---------------------------------------------------------------------------
// Webhook receiver

/**
 * Receives webhook POSTs, verifies each with the SDK's own
 * pusher.webhook({headers, rawBody}).isValid(), answers 200.
 * `hooks`: every request {headers, rawBody, body, valid}; `events`: every
 * event of every valid request, {...event, hook}.
 */
export async function startWebhookReceiver(app = APP) {
  const verifier = new PusherServer({ appId: app.id, key: app.key, secret: app.secret });
  const hooks = new Log();
  const events = new Log();
  const srv = http.createServer(async (req, res) => {
    const rawBody = await readBody(req);
    let body = null;
    try {
      body = JSON.parse(rawBody);
    } catch {}
    const webhook = verifier.webhook({ headers: req.headers, rawBody });
    const hook = { method: req.method, url: req.url, headers: req.headers, rawBody, body, valid: webhook.isValid() };
    hooks.add(hook);
    if (hook.valid) for (const event of webhook.getEvents()) events.add({ ...event, hook });
    res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
    res.end('{}');
  });
  const port = await listen(srv);
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    hooks,
    events,
    /** Wait for a verified webhook event matching `predicate`. */
    waitEvent(label, predicate, opts = {}) {
      return events.waitFor(
        () => `webhook ${label}; got ${JSON.stringify(events.map(({ hook, ...e }) => e))} (${hooks.length} requests, ${hooks.filter((h) => !h.valid).length} invalid)`,
        predicate,
        { timeout: T.held, ...opts },
      );
    },
    close: () => closeHttp(srv),
  };
}

// ---------------------------------------------------------------------------
// pusher-js clients

/** pusher-js options pointing at `server` and the auth endpoint. */
export function clientOptions(server, auth, { user, mode = 'ok', ...extra } = {}) {
  const params = { user: JSON.stringify(user ?? {}), mode };
  return {
    wsHost: '127.0.0.1',
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
    channelAuthorization: { endpoint: `${auth.url}/channel-auth`, transport: 'ajax', params },
    userAuthentication: { endpoint: `${auth.url}/user-auth`, transport: 'ajax', params },
    ...extra,
  };
}

/**
 * Decorate a pusher-js instance with logs the tests use:
 * - p.received: every decoded frame (event, channel, data, user_id) in order
 * - p.errors:   every connection 'error' (PusherError carries data.code)
 * - p.states:   every state change {previous, current}
 */
export function instrument(p) {
  p.received = new Log();
  p.errors = new Log();
  p.states = new Log();
  p.connection.bind('message', (m) => p.received.add(m));
  p.connection.bind('error', (e) => p.errors.add(e));
  p.connection.bind('state_change', (s) => p.states.add(s));
  return p;
}

/** Describe a client's recent history for timeout messages. */
export function describeClient(p) {
  const errors = p.errors.map((e) => JSON.stringify(e?.data ?? e?.error ?? e)).slice(-5);
  const frames = p.received.map((m) => JSON.stringify(m)).slice(-8);
  const states = p.states.map((s) => s.current).slice(-6);
  return `state=${p.connection.state} states=[${states.join(' ')}] errors=[${errors.join(', ')}] last frames=[${frames.join(', ')}]`;
}

/** Resolves when pusher-js is connected. */
export function connected(p, timeout = T.connect) {
  return waitFor(() => `pusher-js connected (${describeClient(p)})`, timeout, (resolve, reject) => {
    if (p.connection.state === 'connected') return resolve(p.connection.socket_id);
    const ok = () => resolve(p.connection.socket_id);
    const failed = () => reject(new Error(`pusher-js connection failed (${describeClient(p)})`));
    p.connection.bind('connected', ok);
    p.connection.bind('failed', failed);
    return () => {
      p.connection.unbind('connected', ok);
      p.connection.unbind('failed', failed);
    };
  });
}

/**
 * Subscribe and resolve {channel, data} on pusher:subscription_succeeded;
 * reject on pusher:subscription_error.
 */
export function subscribe(p, name, timeout = T.event + T.connect) {
  const channel = p.subscribe(name);
  return waitFor(() => `subscription_succeeded on ${name} (${describeClient(p)})`, timeout, (resolve, reject) => {
    if (channel.subscribed) return resolve({ channel, data: undefined });
    const ok = (data) => resolve({ channel, data });
    const err = (e) => reject(new Error(`subscription_error on ${name}: ${JSON.stringify(e)}`));
    channel.bind('pusher:subscription_succeeded', ok);
    channel.bind('pusher:subscription_error', err);
    return () => {
      channel.unbind('pusher:subscription_succeeded', ok);
      channel.unbind('pusher:subscription_error', err);
    };
  });
}

/**
 * Next `eventName` on a pusher-js dispatcher (channel, pusher.user,
 * watchlist, connection): resolves {data, metadata}. Bind BEFORE causing it.
 */
export function nextEvent(emitter, eventName, { timeout = T.event, filter = () => true, label } = {}) {
  return waitFor(label || `event ${eventName}`, timeout, (resolve) => {
    const fn = (data, metadata) => {
      if (filter(data, metadata)) resolve({ data, metadata });
    };
    emitter.bind(eventName, fn);
    return () => emitter.unbind(eventName, fn);
  });
}

/** Wait for a frame in p.received (scans frames already received too). */
export function receivedFrame(p, predicate, { from = 0, timeout = T.event, label = 'frame' } = {}) {
  return p.received.waitFor(() => `${label} (${describeClient(p)})`, predicate, { from, timeout });
}

/** Wait until the connection leaves "connected" (after index `from` of p.states). */
export function leftConnected(p, { from = 0, timeout = T.event } = {}) {
  return p.states.waitFor(
    () => `connection to leave "connected" (${describeClient(p)})`,
    (s) => s.previous === 'connected' && s.current !== 'connected',
    { from, timeout },
  );
}

/** Signed in (signin_success) and subscribed to #server-to-user-<id>. */
export async function signedIn(p, timeout = T.event + T.connect) {
  p.signin();
  await waitFor(() => `signin (${describeClient(p)})`, timeout, (resolve, reject) => {
    p.user.signinDonePromise.then(() => {
      if (p.user.user_data) resolve(p.user.user_data);
      else reject(new Error(`signin failed (${describeClient(p)})`));
    });
  });
  const ch = p.user.serverToUserChannel;
  if (!ch) throw new Error('signed in but pusher-js has no server-to-user channel');
  await waitFor(() => `subscription_succeeded on ${ch.name} (${describeClient(p)})`, timeout, (resolve, reject) => {
    if (ch.subscribed) return resolve();
    const ok = () => resolve();
    const err = (e) => reject(new Error(`subscription_error on ${ch.name}: ${JSON.stringify(e)}`));
    ch.bind('pusher:subscription_succeeded', ok);
    ch.bind('pusher:subscription_error', err);
    return () => {
      ch.unbind('pusher:subscription_succeeded', ok);
      ch.unbind('pusher:subscription_error', err);
    };
  });
  return p.user.user_data;
}

// ---------------------------------------------------------------------------
// Raw clients (wire-level checks)

/**
 * A raw Pusher-protocol WebSocket (the `ws` package), for checks pusher-js
 * hides. `messages`: parsed frames with `dataRaw` (the data as sent) and
 * `data` (decoded like pusher-js does).
 */
export async function rawPusher(server, { key = server.app.key, query = 'protocol=7&client=js&version=8.6.0&flash=false', waitEstablished = true } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/app/${key}?${query}`);
  const messages = new Log();
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  ws.on('message', (buf, isBinary) => {
    const text = buf.toString('utf8');
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      frame = { unparsable: text };
    }
    let data = frame.data;
    if (typeof data === 'string') {
      try {
        data = JSON.parse(data);
      } catch {}
    }
    messages.add({ ...frame, dataRaw: frame.data, data, binary: isBinary, text });
  });
  const raw = {
    ws,
    messages,
    closed,
    socketId: null,
    send(event, data, channel) {
      const frame = { event, data };
      if (channel !== undefined) frame.channel = channel;
      ws.send(JSON.stringify(frame));
    },
    waitMessage(label, predicate, opts = {}) {
      return messages.waitFor(() => `${label}; got ${JSON.stringify(messages.map((m) => m.text))}`, predicate, opts);
    },
    close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    },
  };
  if (waitEstablished) {
    const est = await raw.waitMessage('pusher:connection_established', (m) => m.event === 'pusher:connection_established', {
      timeout: T.connect,
    });
    raw.socketId = est.data?.socket_id;
  }
  return raw;
}

/**
 * A native-protocol client (docs/protocol.md): connects anonymously.
 * `command(type, fields)` resolves the result or rejects the error;
 * `pushes` logs every push (frames without id).
 */
export async function nativeClient(server) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/connection/websocket`);
  const pushes = new Log();
  const pending = new Map();
  let nextId = 1;
  ws.on('error', () => {});
  ws.on('message', (buf) => {
    const frame = JSON.parse(buf.toString('utf8'));
    if (frame.id !== undefined && pending.has(frame.id)) {
      const { resolve, reject } = pending.get(frame.id);
      pending.delete(frame.id);
      if (frame.error) reject(new Error(`native ${JSON.stringify(frame.error)}`));
      else resolve(frame.result);
    } else if (frame.id === undefined) {
      pushes.add(frame);
    }
  });
  await waitFor('native WebSocket open', T.connect, (resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const client = {
    ws,
    pushes,
    command(type, fields = {}) {
      const id = nextId++;
      return waitFor(`native reply to ${type}`, T.event, (resolve, reject) => {
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, type, ...fields }));
        return () => pending.delete(id);
      });
    },
    waitPush(label, predicate, opts = {}) {
      return pushes.waitFor(() => `native ${label}; got ${JSON.stringify([...pushes])}`, predicate, opts);
    },
    close() {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    },
  };
  client.session = await client.command('connect');
  return client;
}

/** POST /api/publish on the native HTTP API. */
export async function nativePublish(server, channel, data) {
  const res = await fetch(`${server.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, data }),
    signal: AbortSignal.timeout(T.event),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/api/publish answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** POST /api/moderation on the native HTTP API (the API key moderates everything); its answer. */
export async function moderate(h, action) {
  const res = await fetch(`${h.server.httpUrl}/api/moderation`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(action),
    signal: AbortSignal.timeout(T.event),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/api/moderation answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

// ---------------------------------------------------------------------------
// Hand-signed Pusher HTTP API requests (auth_version 1.0)

/**
 * Build a signed URL by hand (independently of the SDK), so tests can forge
 * signatures and timestamps. Returns the full URL.
 */
export function handSignedUrl(server, { method, path: apiPath, body = '', params = {}, app = server.app, secret = app.secret, timestamp = Math.floor(Date.now() / 1000) }) {
  const query = { auth_key: app.key, auth_timestamp: String(timestamp), auth_version: '1.0', ...params };
  if (body) query.body_md5 = crypto.createHash('md5').update(body).digest('hex');
  const sorted = Object.keys(query)
    .sort()
    .map((k) => `${k.toLowerCase()}=${query[k]}`)
    .join('&');
  const signature = crypto.createHmac('sha256', secret).update(`${method.toUpperCase()}\n${apiPath}\n${sorted}`).digest('hex');
  const qs = new URLSearchParams({ ...query, auth_signature: signature });
  return `${server.httpUrl}${apiPath}?${qs}`;
}

// ---------------------------------------------------------------------------
// One object per test file: server + auth + SDK + tracked clients

/**
 * Start everything a test file needs. Options are those of startServer plus
 * `withWebhooks: [event names]` (starts a receiver and configures it).
 */
export async function setup({ withWebhooks = null, ...serverOpts } = {}) {
  const h = {
    clients: [],
    raws: [],
    natives: [],
    server: null,
    auth: null,
    hooks: null,
    sdk: null,
    app: serverOpts.app ?? APP,
  };
  h.close = async () => {
    for (const p of h.clients) {
      try {
        p.disconnect();
      } catch {}
    }
    for (const c of [...h.raws, ...h.natives]) c.close();
    const stopped = h.server ? await h.server.stop() : null;
    await h.auth?.close();
    await h.hooks?.close();
    return stopped;
  };
  try {
    h.auth = await startAuthServer(h.app);
    if (withWebhooks) {
      h.hooks = await startWebhookReceiver(h.app);
      serverOpts = { ...serverOpts, webhooks: [{ url: h.hooks.url, events: withWebhooks }] };
    }
    h.server = await startServer(serverOpts);
  } catch (e) {
    await h.close();
    throw e;
  }
  h.sdk = sdkFor(h.server, h.app);
  /** A new pusher-js client (instrumented, tracked for close()). */
  h.client = (opts = {}) => {
    const p = instrument(new PusherClient(h.app.key, clientOptions(h.server, h.auth, opts)));
    h.clients.push(p);
    return p;
  };
  /** A connected pusher-js client. */
  h.connectedClient = async (opts = {}) => {
    const p = h.client(opts);
    await connected(p);
    return p;
  };
  h.raw = async (opts) => {
    const r = await rawPusher(h.server, opts);
    h.raws.push(r);
    return r;
  };
  h.native = async () => {
    const n = await nativeClient(h.server);
    h.natives.push(n);
    return n;
  };
  return h;
}

/** A unique channel-name suffix per call. */
let uniq = 0;
export function unique(prefix) {
  uniq += 1;
  return `${prefix}${process.pid}-${uniq}`;
}

/**
 * Fence: send pusher:ping and wait for the pusher:pong. The server handles a
 * connection's frames in order, so everything this client sent before is
 * processed once the pong is back (used before asserting an absence).
 */
export async function fence(p) {
  const from = p.received.length;
  p.send_event('pusher:ping', {});
  await receivedFrame(p, (m) => m.event === 'pusher:pong', { from, label: 'pusher:pong (fence)' });
}

/** Trigger `marker` on `channel` from the SDK and wait until every client in `clients` got it. */
export async function marker(h, channel, clients, name = 'marker') {
  const id = unique('m');
  const froms = clients.map((p) => p.received.length);
  await h.sdk.trigger(channel, name, { id });
  await Promise.all(
    clients.map((p, i) =>
      receivedFrame(p, (m) => m.event === name && m.channel === channel && m.data?.id === id, {
        from: froms[i],
        label: `${name} on ${channel}`,
      }),
    ),
  );
}

/** Frames of event `event` on `channel` received by `p`. */
export function framesOf(p, channel, event) {
  return p.received.filter((m) => m.channel === channel && m.event === event);
}

/**
 * One server for the enclosing `describe`: started before its tests,
 * stopped after them. Returns the harness (the same object `setup` gives),
 * usable inside the tests once the hook has run.
 */
export function serverForSuite(options = {}) {
  let harness;
  before(async () => {
    harness = await setup(options);
  }, { timeout: T.hook });
  after(async () => {
    await harness?.close();
  }, { timeout: T.hook });
  return new Proxy({}, {
    get(_, key) {
      const value = harness[key];
      return typeof value === 'function' ? value.bind(harness) : value;
    },
  });
}
