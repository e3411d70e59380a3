// Test harness for the integration suite: starts the real fanfare binary on
// a free port (127.0.0.1:0, or a port it had before, for a restart) with a
// data directory the test may keep across restarts, signs JWTs, and calls
// the HTTP API. Every wait is on an event, with a timeout; nothing sleeps.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

import { FanfareClient, type ClientOptions, type Emitter } from '../../src/index.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const BIN = process.env.FANFARE_BIN
  ? path.resolve(process.env.FANFARE_BIN)
  : path.join(REPO_ROOT, 'target', 'debug', 'fanfare');

/** Multiply every wait (slow machines, debug builds under load). */
const SCALE = Number(process.env.FANFARE_TS_TIMEOUT_SCALE || '1') || 1;
export const T = {
  start: 30_000 * SCALE,
  stop: 10_000 * SCALE,
  event: 5_000 * SCALE,
  test: 60_000 * SCALE,
};

export const API_KEY = 'fanfare-ts-suite-api-key-0123456789';
const JWT_SECRET = 'fanfare-ts-suite-jwt-secret-0123456789abcdef';

/** The configuration every test server runs with; `extra` is appended. */
function configToml(extra: string): string {
  return `api_key = "${API_KEY}"
shutdown_grace = "1s"

[store]
durability = "buffered"

[auth]
allow_anonymous = true
jwt_secret = "${JWT_SECRET}"

[namespaces.chat]
publish = "subscribers"
presence = true
join_leave = true

[namespaces.small]
publish = "subscribers"
recovery_limit = 2
${extra}`;
}

/** Where the run script wants pid files of started servers (its EXIT trap kills what is left). */
const PID_DIR = process.env.FANFARE_TS_PID_DIR || null;
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface Server {
  port: number;
  url: string;
  httpUrl: string;
  dataDir: string;
  /** SIGTERM (a shutdown) or SIGKILL (a crash); resolves once the process has exited. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

export interface StartOptions {
  /** Keep history across restarts: pass the dataDir of the server before. */
  dataDir?: string;
  /** 0 (default) for a free port. */
  port?: number;
  extraToml?: string;
}

/** A fresh scratch directory, removed when the test process exits. */
export function scratchDir(): string {
  const dir = fs.mkdtempSync(path.join(process.env.FANFARE_TS_TMP || os.tmpdir(), 'fanfare-ts-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startServer(options: StartOptions = {}): Promise<Server> {
  if (!fs.existsSync(BIN))
    throw new Error(`fanfare binary not found at ${BIN} (cargo build -p fanfare, or set FANFARE_BIN)`);
  const dir = scratchDir();
  const dataDir = options.dataDir ?? path.join(dir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const configPath = path.join(dir, 'fanfare.toml');
  fs.writeFileSync(configPath, configToml(options.extraToml ?? ''));
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('FANFARE_')) env[key] = value;
  env.FANFARE_LOG = process.env.FANFARE_TS_SERVER_LOG || 'warn';
  env.NO_COLOR = '1';
  const args = ['serve', '--listen', `127.0.0.1:${options.port ?? 0}`, '--data-dir', dataDir, '--config', configPath];
  const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const pidFile = PID_DIR && child.pid ? path.join(PID_DIR, String(child.pid)) : null;
  if (pidFile) fs.writeFileSync(pidFile, `${child.pid}\n`);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    if (process.env.FANFARE_TS_SERVER_STDERR === '1') process.stderr.write(chunk);
    stderr = (stderr + chunk).slice(-16_384);
  });
  const exited = new Promise<void>((resolve) => {
    child.on('exit', () => {
      live.delete(child);
      if (pidFile) fs.rmSync(pidFile, { force: true });
      resolve();
    });
  });
  const port = await within<number>(
    T.start,
    () => `"fanfare listening on" from ${BIN}; stderr:\n${stderr}`,
    (resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        const match = /^fanfare listening on 127\.0\.0\.1:(\d+)$/.exec(line.trim());
        if (match) resolve(Number(match[1]));
      });
      child.on('exit', (code, signal) =>
        reject(new Error(`fanfare exited (code ${code}, signal ${signal}); stderr:\n${stderr}`)),
      );
    },
  ).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw error;
  });
  return {
    port,
    url: `ws://127.0.0.1:${port}/connection/websocket`,
    httpUrl: `http://127.0.0.1:${port}`,
    dataDir,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), T.stop);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------
// Waiting

/** A promise settled by `register`'s callbacks, or rejected after `timeoutMs`. */
export function within<T>(
  timeoutMs: number,
  label: string | (() => string),
  register: (resolve: (value: T) => void, reject: (error: Error) => void) => void | (() => void),
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let cleanup: void | (() => void);
    const timer = setTimeout(() => {
      if (cleanup) cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${typeof label === 'function' ? label() : label}`));
    }, timeoutMs);
    cleanup = register(
      (value) => {
        clearTimeout(timer);
        if (cleanup) cleanup();
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        if (cleanup) cleanup();
        reject(error);
      },
    );
  });
}

/** The next `name` event of `emitter` for which `accept` holds. */
export function nextEvent<E extends object, K extends keyof E>(
  emitter: Emitter<E>,
  name: K,
  accept: (event: E[K]) => boolean = () => true,
  timeoutMs = T.event,
): Promise<E[K]> {
  return within(timeoutMs, `event ${String(name)}`, (resolve) =>
    emitter.on(name, (event) => {
      if (accept(event)) resolve(event);
    }),
  );
}

/** Collects `name` events of `emitter`; `until(n)` waits for the n-th. */
export function collect<E extends object, K extends keyof E>(emitter: Emitter<E>, name: K) {
  const events: E[K][] = [];
  const waiters = new Set<() => void>();
  emitter.on(name, (event) => {
    events.push(event);
    for (const waiter of [...waiters]) waiter();
  });
  return {
    events,
    until(count: number, timeoutMs = T.event): Promise<E[K][]> {
      return within(
        timeoutMs,
        () => `${count} ${String(name)} events (have ${events.length})`,
        (resolve) => {
          const check = () => {
            if (events.length >= count) resolve(events.slice(0, count));
          };
          waiters.add(check);
          check();
          return () => waiters.delete(check);
        },
      );
    },
  };
}

/** A gate for the client's `url` callback: reconnects wait until it is opened, with a URL. */
export function urlGate(initial: string) {
  let current: Promise<string> = Promise.resolve(initial);
  let open: (url: string) => void = () => {};
  return {
    url: () => current,
    /** From now on, attempts wait until open() is called. */
    close() {
      current = new Promise<string>((resolve) => {
        open = resolve;
      });
    },
    open(url: string) {
      open(url);
      current = Promise.resolve(url);
    },
  };
}

// ---------------------------------------------------------------------------
// Clients, tokens, the HTTP API

/** A client of `server` in Node 20 (the `ws` package), with short backoff so tests stay quick. */
export function clientOf(
  server: Server | { url: ClientOptions['url'] },
  options: Partial<ClientOptions> = {},
): FanfareClient {
  const client = new FanfareClient({
    url: server.url,
    WebSocket,
    backoff: { baseMs: 100, maxMs: 1000 },
    ...options,
  });
  clients.add(client);
  return client;
}

const clients = new Set<FanfareClient>();

/** Closes every client made by clientOf (call in afterEach). */
export function closeClients(): void {
  for (const client of clients) client.close();
  clients.clear();
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** An HS256 JWT the test servers accept. */
export function tokenFor(sub: string, claims: Record<string, unknown> = {}): string {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = base64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600, ...claims }));
  const signature = createHmac('sha256', JWT_SECRET).update(`${header}.${body}`).digest();
  return `${header}.${body}.${base64url(signature)}`;
}

export async function api<T>(server: Server, method: 'GET' | 'POST', pathAndQuery: string, body?: unknown): Promise<T> {
  const init: RequestInit = {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(server.httpUrl + pathAndQuery, { ...init, signal: AbortSignal.timeout(T.event) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${pathAndQuery}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** POST /api/publish. */
export function publishHttp(server: Server, channel: string, data: unknown, extra: Record<string, unknown> = {}) {
  return api<{ epoch: string; offset: number }>(server, 'POST', '/api/publish', { channel, data, ...extra });
}
