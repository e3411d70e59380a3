// Built-in TLS (`[tls] cert_file` / `key_file`): the real binary serves
// https:// and wss:// on its one port, pusher-js (and Laravel Echo) connect
// over wss://, the `pusher` SDK triggers over https://, and every client
// trusts only a CA this file makes with the openssl CLI.
//
// pusher-js in Node takes no CA option, and Node reads NODE_EXTRA_CA_CERTS
// only at process start: the pusher-js clients run in child processes of
// this file (started with FANFARE_JS_TLS_CHILD, see runChild) that report
// over IPC. The SDK and the raw checks run here with the CA passed
// explicitly (an https.Agent, `ca` options). Nothing disables certificate
// verification: a client that does not trust the CA must fail.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

import Echo from 'laravel-echo';

import { APP, PusherClient, PusherServer, T, WebSocket, startAuthServer, startServer, unique, waitFor } from './support.mjs';

const THIS_FILE = fileURLToPath(import.meta.url);
const CHILD_ENV = 'FANFARE_JS_TLS_CHILD';

if (process.env[CHILD_ENV]) {
  runChild(JSON.parse(process.env[CHILD_ENV]));
} else {
  defineTests();
}

// ---------------------------------------------------------------------------
// Certificates (openssl CLI)

/** Why these tests cannot run (no openssl), or null. Under CI=true a missing openssl is an error. */
function opensslMissing() {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (probe.status === 0) return null;
  const why = `the openssl CLI is not available (${probe.error?.message ?? probe.stderr?.trim() ?? `exit ${probe.status}`}); it makes the test CA and certificate`;
  if (process.env.CI === 'true') throw new Error(`tls.test.mjs: ${why} (CI=true: failing instead of skipping)`);
  console.log(`tls.test.mjs: skipping: ${why}`);
  return why;
}

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: T.event });
  if (r.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${r.stderr}`);
  }
  return r.stdout;
}

/**
 * A CA and the server certificates it signs for 127.0.0.1 (IP SAN) and
 * localhost, in `dir`: `server` with a P-256 key in PKCS#8 (OpenSSL 3's
 * default) and the same key as SEC1 (`BEGIN EC PRIVATE KEY`); `rsa` with an
 * RSA key as PKCS#1 (`BEGIN RSA PRIVATE KEY`). Returns the paths.
 */
function makeCertificates(dir) {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-sha256',
    '-subj', '/CN=Fanfare JS suite test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid,issuer',
    '',
  ].join('\n'));
  const leaf = (name, newkey) => {
    openssl(['req', '-new', ...newkey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1'], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
      '-set_serial', `0x${crypto.randomBytes(8).toString('hex')}`, '-days', '2', '-sha256',
      '-extfile', 'server.ext', '-out', `${name}.pem`], dir);
  };
  leaf('server', ec);
  openssl(['ec', '-in', 'server.key', '-out', 'server.sec1.key'], dir);
  leaf('rsa', ['-newkey', 'rsa:2048', '-nodes']);
  openssl(['rsa', '-in', 'rsa.key', '-traditional', '-out', 'rsa.pkcs1.key'], dir);
  const files = {
    ca: path.join(dir, 'ca.pem'),
    cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'),
    sec1Key: path.join(dir, 'server.sec1.key'),
    rsaCert: path.join(dir, 'rsa.pem'),
    pkcs1Key: path.join(dir, 'rsa.pkcs1.key'),
  };
  assert.match(fs.readFileSync(files.key, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
  assert.match(fs.readFileSync(files.sec1Key, 'utf8'), /^-----BEGIN EC PRIVATE KEY-----/);
  assert.match(fs.readFileSync(files.pkcs1Key, 'utf8'), /^-----BEGIN RSA PRIVATE KEY-----/);
  return files;
}

// ---------------------------------------------------------------------------
// pusher-js in a child process

/** Runs in the child: one pusher-js (or Echo) client, every happening sent to the parent. */
function runChild(cfg) {
  const report = (msg) => process.send?.(msg);
  const errorText = (e) => {
    const inner = e?.error ?? e;
    return [e?.type, inner?.message, inner?.code, inner?.error?.message, e?.data && JSON.stringify(e.data)]
      .filter(Boolean)
      .join(' | ') || String(inner);
  };
  // The options docs/pusher.md gives for a Fanfare with built-in TLS.
  const options = {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wssPort: cfg.port,
    forceTLS: true,
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
  };
  // pusher-js keeps a transport's errors to itself while it retries: report
  // each socket's URL, opening and error from the WebSocket pusher-js makes.
  const createWebSocket = PusherClient.Runtime.createWebSocket;
  PusherClient.Runtime.createWebSocket = function (url) {
    const socket = createWebSocket.call(this, url);
    socket.addEventListener('open', () => report({ type: 'socket_open', url }));
    socket.addEventListener('error', (e) => report({ type: 'socket_error', url, text: e?.message ?? String(e) }));
    return socket;
  };
  let pusher;
  let echo = null;
  if (cfg.echo) {
    echo = new Echo({
      broadcaster: 'pusher',
      Pusher: PusherClient,
      key: cfg.key,
      ...options,
      authEndpoint: `${cfg.authUrl}/channel-auth`,
      withoutInterceptors: true,
    });
    pusher = echo.connector.pusher;
  } else {
    pusher = new PusherClient(cfg.key, {
      ...options,
      channelAuthorization: { endpoint: `${cfg.authUrl}/channel-auth`, transport: 'ajax' },
    });
  }
  pusher.connection.bind('state_change', (s) => report({ type: 'state', previous: s.previous, current: s.current }));
  pusher.connection.bind('error', (e) => report({ type: 'error', text: errorText(e) }));
  pusher.connection.bind('connected', () => report({ type: 'connected', socketId: pusher.connection.socket_id }));
  for (const name of cfg.channels ?? []) {
    if (echo) {
      const isPrivate = name.startsWith('private-');
      const channel = isPrivate ? echo.private(name.slice('private-'.length)) : echo.channel(name);
      channel.subscribed(() => report({ type: 'subscribed', channel: name }));
      channel.error((e) => report({ type: 'subscription_error', channel: name, text: JSON.stringify(e) }));
      channel.listen(`.${cfg.event}`, (data) => report({ type: 'event', channel: name, event: cfg.event, data }));
    } else {
      const channel = pusher.subscribe(name);
      channel.bind('pusher:subscription_succeeded', () => report({ type: 'subscribed', channel: name }));
      channel.bind('pusher:subscription_error', (e) => report({ type: 'subscription_error', channel: name, text: JSON.stringify(e) }));
      channel.bind(cfg.event, (data) => report({ type: 'event', channel: name, event: cfg.event, data }));
    }
  }
  const quit = () => {
    try {
      pusher.disconnect();
    } finally {
      process.exit(0);
    }
  };
  process.on('message', (m) => m?.type === 'exit' && quit());
  process.on('disconnect', quit); // the parent went away
}

/** Children started by this file, ended in `after` (and killed if this process exits). */
const children = new Set();
process.on('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

/**
 * Start a child pusher-js client. `trustCa`: the CA file given as
 * NODE_EXTRA_CA_CERTS, or null (then it trusts only Node's bundled roots).
 * Returns { messages, wait(label, predicate), stop() }.
 */
function startClient(cfg, { trustCa }) {
  const env = { ...process.env };
  // Not a test-runner child (its stdout protocol), no inherited trust or
  // verification settings: only what this test sets.
  for (const k of ['NODE_TEST_CONTEXT', 'NODE_EXTRA_CA_CERTS', 'NODE_TLS_REJECT_UNAUTHORIZED']) delete env[k];
  if (trustCa) env.NODE_EXTRA_CA_CERTS = trustCa;
  env[CHILD_ENV] = JSON.stringify(cfg);
  const child = fork(THIS_FILE, [], { env, execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  children.add(child);
  const pidDir = process.env.FANFARE_JS_PID_DIR;
  const pidFile = pidDir && child.pid ? path.join(pidDir, String(child.pid)) : null;
  if (pidFile) {
    try {
      fs.writeFileSync(pidFile, `${child.pid}\n`);
    } catch {}
  }
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const messages = [];
  const listeners = new Set();
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (pidFile) fs.rmSync(pidFile, { force: true });
      exitInfo = { code, signal };
      for (const l of [...listeners]) l();
      resolve(exitInfo);
    });
  });
  child.on('message', (m) => {
    messages.push(m);
    for (const l of [...listeners]) l();
  });
  const describeChild = () =>
    `child pusher-js messages ${JSON.stringify(messages.slice(-12))}${exitInfo ? `, exited ${JSON.stringify(exitInfo)}` : ''}${stderr ? `, stderr:\n${stderr}` : ''}`;
  return {
    messages,
    describe: describeChild,
    /** Resolve with the first message matching `predicate`; reject on timeout or if the child exits first. */
    wait(label, predicate, timeout = T.connect) {
      return waitFor(() => `${label} (${describeChild()})`, timeout, (resolve, reject) => {
        let index = 0;
        const scan = () => {
          for (; index < messages.length; index++) {
            if (predicate(messages[index])) return resolve(messages[index]);
          }
          if (exitInfo) reject(new Error(`child exited before ${label} (${describeChild()})`));
        };
        scan();
        listeners.add(scan);
        return () => listeners.delete(scan);
      });
    },
    async stop() {
      if (exitInfo) return exitInfo;
      try {
        child.send({ type: 'exit' });
      } catch {}
      const timer = setTimeout(() => child.kill('SIGKILL'), T.stop);
      const info = await exited;
      clearTimeout(timer);
      return info;
    },
  };
}

// ---------------------------------------------------------------------------
// Small TLS helpers (this process, CA given explicitly)

/** GET `url` over https with `ca` (or Node's default roots when ca is null). Resolves {status, body} or rejects. */
function httpsGet(url, { ca }) {
  return waitFor(`GET ${url}`, T.event, (resolve, reject) => {
    const req = https.get(url, { ca: ca ?? undefined, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    return () => req.destroy();
  });
}

/** A TLS handshake with 127.0.0.1:port; resolves what was negotiated. */
function handshake(port, { ca, ...options }) {
  return waitFor(`TLS handshake with 127.0.0.1:${port} ${JSON.stringify(options)}`, T.event, (resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ...options }, () => {
      resolve({
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol,
        fingerprint256: socket.getPeerCertificate().fingerprint256,
        authorized: socket.authorized,
      });
      socket.end();
    });
    socket.on('error', reject);
    return () => socket.destroy();
  });
}

/** A raw WebSocket to `url` (`ws` options): resolves the first frame, rejects the error. */
function firstFrame(url, options = {}) {
  return waitFor(`first frame from ${url}`, T.connect, (resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.on('message', (buf) => resolve(JSON.parse(buf.toString('utf8'))));
    ws.on('error', reject);
    ws.on('close', (code) => reject(new Error(`closed with ${code} before any frame`)));
    return () => ws.terminate();
  });
}

// ---------------------------------------------------------------------------
// The tests

function defineTests() {
  const skip = opensslMissing();

  describe('built-in TLS: pusher-js over wss://, the pusher SDK over https://', { skip: skip ?? false }, () => {
    let dir;
    let files;
    let caPem;
    let auth;
    let server;
    let sdk;
    const clients = [];
    const client = (cfg, opts) => {
      const c = startClient({ key: APP.key, port: server.port, authUrl: auth.url, event: 'tls-event', ...cfg }, opts);
      clients.push(c);
      return c;
    };
    const sdkOptions = () => ({
      appId: APP.id,
      key: APP.key,
      secret: APP.secret,
      host: '127.0.0.1',
      port: String(server.port),
      useTLS: true,
      timeout: T.event,
    });

    before(async () => {
      dir = fs.mkdtempSync(path.join(process.env.FANFARE_JS_TMP || os.tmpdir(), 'fanfare-js-tls-'));
      files = makeCertificates(dir);
      caPem = fs.readFileSync(files.ca, 'utf8');
      auth = await startAuthServer(APP);
      const q = JSON.stringify; // a JSON string is a TOML basic string here
      server = await startServer({ configToml: `[tls]\ncert_file = ${q(files.cert)}\nkey_file = ${q(files.key)}\n` });
      sdk = new PusherServer({ ...sdkOptions(), agent: new https.Agent({ ca: caPem }) });
    }, { timeout: T.hook });

    after(async () => {
      await Promise.all(clients.map((c) => c.stop()));
      await server?.stop();
      await auth?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }, { timeout: T.hook });

    it('pusher-js (forceTLS, wsHost, wssPort) gets, on a public and a private channel, an event the SDK triggers with useTLS', { timeout: T.test }, async () => {
      const pub = unique('tls-news-');
      const priv = unique('private-tls-');
      const c = client({ channels: [pub, priv] }, { trustCa: files.ca });
      await c.wait('pusher-js connected over wss://', (m) => m.type === 'connected');
      const opened = c.messages.filter((m) => m.type === 'socket_open').map((m) => m.url);
      assert.deepEqual(opened.map((u) => u.replace(/\?.*/, '')), [`wss://127.0.0.1:${server.port}/app/${APP.key}`]);
      await Promise.all([pub, priv].map((ch) =>
        c.wait(`subscribed to ${ch}`, (m) => (m.type === 'subscribed' || m.type === 'subscription_error') && m.channel === ch, T.event + T.connect)));
      for (const m of c.messages.filter((m) => m.type === 'subscription_error')) assert.fail(`subscription error: ${JSON.stringify(m)}`);
      assert.ok(auth.requests.some((r) => r.channel === priv), 'the private channel was authorized by the auth endpoint');

      const id = crypto.randomUUID();
      const reply = await sdk.trigger([pub, priv], 'tls-event', { id, over: 'https' });
      assert.equal(reply.status, 200);
      const got = await Promise.all([pub, priv].map((ch) =>
        c.wait(`tls-event on ${ch}`, (m) => m.type === 'event' && m.channel === ch && m.data?.id === id, T.event)));
      for (const m of got) assert.deepEqual(m.data, { id, over: 'https' });
      assert.equal(c.messages.filter((m) => m.type === 'error').length, 0, `no connection errors: ${c.describe()}`);
    });

    it('Laravel Echo (broadcaster pusher, the same options) listens over wss://', { timeout: T.test }, async () => {
      const pub = unique('tls-echo-');
      const priv = unique('private-tls-echo-');
      const c = client({ channels: [pub, priv], echo: true }, { trustCa: files.ca });
      await Promise.all([pub, priv].map((ch) =>
        c.wait(`Echo subscribed to ${ch}`, (m) => (m.type === 'subscribed' || m.type === 'subscription_error') && m.channel === ch, T.event + T.connect)));
      for (const m of c.messages.filter((m) => m.type === 'subscription_error')) assert.fail(`subscription error: ${JSON.stringify(m)}`);
      const id = crypto.randomUUID();
      await sdk.trigger([pub, priv], 'tls-event', { id });
      await Promise.all([pub, priv].map((ch) =>
        c.wait(`.tls-event on ${ch}`, (m) => m.type === 'event' && m.channel === ch && m.data?.id === id, T.event)));
    });

    it('a client that does not trust the CA cannot connect (pusher-js, the SDK, a raw WebSocket)', { timeout: T.test }, async () => {
      // pusher-js with Node's bundled roots only: a certificate error, never "connected".
      const c = client({ channels: [unique('tls-untrusted-')] }, { trustCa: null });
      const failed = await c.wait('the untrusted pusher-js socket fails', (m) => ['socket_error', 'socket_open', 'connected'].includes(m.type));
      assert.equal(failed.type, 'socket_error', `connected without trusting the CA: ${c.describe()}`);
      assert.match(failed.url, /^wss:\/\/127\.0\.0\.1:\d+\/app\//);
      assert.match(failed.text, /unable to verify the first certificate/i, c.describe());
      await c.stop();
      assert.ok(!c.messages.some((m) => ['socket_open', 'connected', 'subscribed'].includes(m.type)), c.describe());

      // The SDK without the CA: the request fails on verification, nothing is sent.
      const untrusted = new PusherServer(sdkOptions());
      const err = await untrusted.trigger(unique('tls-untrusted-'), 'tls-event', {}).then(
        () => assert.fail('the SDK triggered over https:// without trusting the CA'),
        (e) => e,
      );
      assert.equal(err.status, undefined, 'no HTTP status: the request never got an answer');
      assert.equal(err.error?.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', `${err.message}: ${err.error}`);

      // A raw WebSocket: refused without the CA, established with it.
      const url = `wss://127.0.0.1:${server.port}/app/${APP.key}?protocol=7&client=js&version=8.6.0&flash=false`;
      await assert.rejects(firstFrame(url), (e) => e.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      const frame = await firstFrame(url, { ca: caPem });
      assert.equal(frame.event, 'pusher:connection_established');
    });

    it('the port serves only TLS: http:// and ws:// get no HTTP answer', { timeout: T.test }, async () => {
      await assert.rejects(
        fetch(`http://127.0.0.1:${server.port}/health`, { signal: AbortSignal.timeout(T.event) }),
        (e) => e.name === 'TypeError' || e.name === 'TimeoutError',
      );
      await assert.rejects(firstFrame(`ws://127.0.0.1:${server.port}/app/${APP.key}?protocol=7`));
      // The same request over https:// is answered.
      const health = await httpsGet(`https://127.0.0.1:${server.port}/health`, { ca: caPem });
      assert.equal(health.status, 200, health.body);
    });

    it('TLS 1.2 and 1.3, ALPN http/1.1, the certificate of cert_file', { timeout: T.test }, async () => {
      const fingerprint = new crypto.X509Certificate(fs.readFileSync(files.cert)).fingerprint256;
      const v13 = await handshake(server.port, { ca: caPem, ALPNProtocols: ['h2', 'http/1.1'] });
      assert.deepEqual(v13, { protocol: 'TLSv1.3', alpn: 'http/1.1', fingerprint256: fingerprint, authorized: true });
      const v12 = await handshake(server.port, { ca: caPem, maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] });
      assert.deepEqual(v12, { protocol: 'TLSv1.2', alpn: 'http/1.1', fingerprint256: fingerprint, authorized: true });
      // The DNS name of the certificate verifies too (SNI "localhost").
      const byName = await handshake(server.port, { ca: caPem, servername: 'localhost' });
      assert.equal(byName.authorized, true);
    });

    it('FANFARE_TLS_CERT_FILE / FANFARE_TLS_KEY_FILE configure it too (SEC1 and PKCS#1 keys)', { timeout: T.test }, async () => {
      for (const [cert, key] of [[files.cert, files.sec1Key], [files.rsaCert, files.pkcs1Key]]) {
        const other = await startServer({ env: { FANFARE_TLS_CERT_FILE: cert, FANFARE_TLS_KEY_FILE: key } });
        try {
          const shown = await handshake(other.port, { ca: caPem });
          assert.equal(shown.fingerprint256, new crypto.X509Certificate(fs.readFileSync(cert)).fingerprint256, key);
          const health = await httpsGet(`https://127.0.0.1:${other.port}/health`, { ca: caPem });
          assert.equal(health.status, 200, health.body);
          const otherSdk = new PusherServer({ ...sdkOptions(), port: String(other.port), agent: new https.Agent({ ca: caPem }) });
          const reply = await otherSdk.get({ path: '/channels' });
          assert.equal(reply.status, 200);
          assert.deepEqual(await reply.json(), { channels: {} });
        } finally {
          await other.stop();
        }
      }
    });
  });
}
