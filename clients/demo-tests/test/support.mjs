// Harness of the demo tests: the real fanfare binary with --demo on a
// free port and a data directory kept across restarts (a restart reuses
// the port, so the pages reconnect by themselves), Debian's Chromium
// driven by playwright-core, and waits on the pages' DOM. Every wait has a
// timeout; nothing sleeps to synchronise.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = process.env.FANFARE_BIN
  ? path.resolve(process.env.FANFARE_BIN)
  : path.join(REPO_ROOT, 'target', 'debug', 'fanfare');
export const CHROMIUM = process.env.FANFARE_CHROMIUM || '/usr/bin/chromium';
/** Where the screenshots go (gitignored; the run script prints it). */
export const ARTEFACTS = process.env.FANFARE_DEMO_ARTEFACTS || path.join(REPO_ROOT, 'target', 'demo-screenshots');

const SCALE = Number(process.env.FANFARE_DEMO_TIMEOUT_SCALE || '1') || 1;
export const T = {
  start: 30_000 * SCALE,
  stop: 10_000 * SCALE,
  event: 10_000 * SCALE,
  test: 90_000 * SCALE,
};

export const API_KEY = 'fanfare-demo-suite-api-key-0123456789';

const PID_DIR = process.env.FANFARE_DEMO_PID_DIR || null;
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

let playwright = null;
try {
  playwright = await import('playwright-core');
} catch {}
/** A reason to skip, or false: the run script installs both, and fails under CI when it cannot. */
export const skip = !playwright
  ? 'playwright-core is not installed (npm ci in clients/demo-tests)'
  : !fs.existsSync(CHROMIUM)
    ? `no Chromium at ${CHROMIUM}`
    : false;

/** A scratch directory removed when the test process exits. */
function scratchDir() {
  const dir = fs.mkdtempSync(path.join(process.env.FANFARE_DEMO_TMP || os.tmpdir(), 'fanfare-demo-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * `fanfare serve --demo` on 127.0.0.1 (`port` 0: a free one). Returns
 * {port, httpUrl, dataDir, stop(), restart()}: restart() stops it with
 * SIGTERM and starts it again on the same port and data directory.
 */
export async function startDemo({ dataDir = path.join(scratchDir(), 'data'), port = 0 } = {}) {
  if (!fs.existsSync(BIN))
    throw new Error(`fanfare binary not found at ${BIN} (cargo build -p fanfare, or set FANFARE_BIN)`);
  fs.mkdirSync(dataDir, { recursive: true });
  const env = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('FANFARE_')) env[key] = value;
  Object.assign(env, {
    FANFARE_LOG: process.env.FANFARE_DEMO_SERVER_LOG || 'warn',
    FANFARE_API_KEY: API_KEY,
    FANFARE_SHUTDOWN_GRACE: '1s',
    NO_COLOR: '1',
  });
  const child = spawn(BIN, ['serve', '--demo', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const pidFile = PID_DIR && child.pid ? path.join(PID_DIR, String(child.pid)) : null;
  if (pidFile) fs.writeFileSync(pidFile, `${child.pid}\n`);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    if (process.env.FANFARE_DEMO_SERVER_STDERR === '1') process.stderr.write(chunk);
    stderr = (stderr + chunk).slice(-16_384);
  });
  const exited = new Promise((resolve) =>
    child.on('exit', () => {
      live.delete(child);
      if (pidFile) fs.rmSync(pidFile, { force: true });
      resolve();
    }),
  );
  const bound = await within(
    T.start,
    () => `"fanfare listening on"; stderr:\n${stderr}`,
    (resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = /^fanfare listening on 127\.0\.0\.1:(\d+)$/.exec(line.trim());
        if (match) resolve(Number(match[1]));
      });
      child.on('exit', (code, signal) =>
        reject(new Error(`fanfare exited (code ${code}, signal ${signal}); stderr:\n${stderr}`)),
      );
    },
  ).catch(async (error) => {
    child.kill('SIGKILL');
    await exited;
    throw error;
  });
  const server = {
    port: bound,
    httpUrl: `http://127.0.0.1:${bound}`,
    dataDir,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), T.stop);
      await exited;
      clearTimeout(timer);
    },
    async restart() {
      await server.stop();
      return startDemo({ dataDir, port: bound });
    },
  };
  return server;
}

/** A promise settled by `register`'s callbacks, or rejected after `ms`. */
export function within(ms, label, register) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${typeof label === 'function' ? label() : label}`)),
      ms,
    );
    register(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Publishes through the HTTP API (as the application's own server would). */
export async function apiPublish(server, channel, data) {
  const response = await fetch(`${server.httpUrl}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, data }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`publish: ${JSON.stringify(body)}`);
  return body;
}

/**
 * Publishes `data` while the pages cannot see it: through a server started
 * on the same data directory but another port (the pages only know
 * `server.port`), stopped again before returning. What the pages then
 * show of it, they got by recovery.
 */
export async function publishElsewhere(server, channel, data) {
  const elsewhere = await startDemo({ dataDir: server.dataDir });
  try {
    return await apiPublish(elsewhere, channel, data);
  } finally {
    await elsewhere.stop();
  }
}

export async function launchBrowser() {
  return playwright.chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/**
 * A page of `browser` in its own context (its own sessionStorage: another
 * visitor), collecting script errors in `problems`.
 */
export async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (error) => page.problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused WebSocket while the server restarts is expected noise.
    if (message.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(message.text()))
      page.problems.push(`console: ${message.text()}`);
  });
  await page.goto(url);
  return page;
}

/** Waits until `predicate(document)` (a function source run in the page) holds, saying what it waited for. */
export async function waitInPage(page, label, predicate, arg = null) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: T.event, polling: 50 });
  } catch (error) {
    const body = await page.evaluate(() => document.querySelector('main')?.innerText ?? '').catch(() => '?');
    throw new Error(`${label}: ${error.message}\npage text:\n${body}`);
  }
}

/** The page's connection pill reads `state` (idle, connecting, connected, disconnected, closed). */
export function waitState(page, state) {
  return waitInPage(page, `connection ${state}`, (s) => document.getElementById('status')?.dataset.state === s, state);
}

/** The page has lost its connection and is trying again (either state of that loop). */
export function waitReconnecting(page) {
  return waitInPage(page, 'reconnecting', () =>
    ['disconnected', 'connecting'].includes(document.getElementById('status')?.dataset.state),
  );
}

/** The texts of the elements matching `selector`, in order. */
export function texts(page, selector) {
  return page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent));
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTEFACTS, { recursive: true });
  const file = path.join(ARTEFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A name no other test uses (the data directory is shared by a file's tests). */
let counter = 0;
export function unique(prefix) {
  counter += 1;
  return `${prefix}${process.pid % 1000}${counter}`;
}

// ---------------------------------------------------------------------------
// The chat pages (team and direct messages share their markup)

/** The conversation shows a message of this text. */
export function showsMessage(page, text) {
  return waitInPage(
    page,
    `the message "${text}"`,
    (t) => [...document.querySelectorAll('#messages .text')].some((n) => n.textContent === t),
    text,
  );
}

/** Writes `text` in the composer and sends it with Enter. */
export async function send(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** The badge of `channel` in the sidebar reads `count` (0: no badge). */
export function badge(page, channel, count) {
  return waitInPage(
    page,
    `a badge of ${count} on ${channel}`,
    ([c, n]) => {
      const link = document.querySelector(`.sidebar a[data-channel="${c}"]`);
      if (!link) return false;
      const shown = link.querySelector('.badge')?.dataset.count ?? '0';
      return shown === String(n);
    },
    [channel, count],
  );
}
