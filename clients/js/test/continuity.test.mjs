// Continuity (docs/pusher.md, "Continuity"): a signed-in pusher-js user who
// drops and reconnects within `pusher.continuity_window` gets the events of
// its private channels that it missed, in order, without any client change.
// pusher-js talks to the server through a TCP proxy the test controls, so
// the server can be drained, killed and restarted on the same data while the
// client keeps its one address, and the link can be cut abruptly.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
  APP,
  PusherClient,
  T,
  describeClient,
  instrument,
  nextEvent,
  receivedFrame,
  sdkFor,
  startServer,
  subscribe,
  unique,
  waitFor,
} from './support.mjs';

/** How long a reconnect through a refusing proxy may take pusher-js. */
const BACK = 4 * T.connect;

/**
 * A TCP proxy on 127.0.0.1:0 to `target` (a port, changeable). While
 * `refusing`, connections are accepted and destroyed at once; `cut()`
 * destroys every open connection (no WebSocket close: an abrupt loss).
 */
async function startProxy(target) {
  const open = new Set();
  const proxy = { target, refusing: false };
  const server = net.createServer((inbound) => {
    if (proxy.refusing) return inbound.destroy();
    const outbound = net.connect(proxy.target, '127.0.0.1');
    const pair = { inbound, outbound };
    open.add(pair);
    const drop = () => {
      open.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = server.address().port;
  proxy.cut = () => {
    for (const { inbound, outbound } of open) {
      inbound.destroy();
      outbound.destroy();
    }
    open.clear();
  };
  proxy.close = () => {
    proxy.cut();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return proxy;
}

/** A pusher-js client through `proxy`, signing in as `user`; auth signed in-process with the SDK. */
function client(proxy, sdk, user) {
  const p = new PusherClient(APP.key, {
    wsHost: '127.0.0.1',
    wsPort: proxy.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => callback(null, sdk.authorizeChannel(socketId, channelName)),
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => callback(null, sdk.authenticateUser(socketId, { id: user })),
    },
  });
  instrument(p);
  p.signin();
  return p;
}

/** The `msg` events' `n`s that `p` received on `channel`, in order. */
function received(p, channel) {
  return p.received.filter((m) => m.channel === channel && m.event === 'msg').map((m) => m.data.n);
}

function gotMessage(p, channel, n, timeout = T.event) {
  return receivedFrame(p, (m) => m.channel === channel && m.event === 'msg' && m.data.n === n, {
    timeout,
    label: `msg ${n} on ${channel}`,
  });
}

async function metric(server, name) {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Waits for two more answered pings' saves: the second was sent after everything received so far was queued. */
async function answeredPings(server) {
  const name = 'fanfare_pusher_continuity_points_saved_total';
  const before = await metric(server, name);
  await waitFor(`two saves of ${name} past ${before}`, 4 * T.event, (resolve) => {
    const timer = setInterval(async () => {
      if ((await metric(server, name)) >= before + 2) resolve();
    }, 100);
    return () => clearInterval(timer);
  });
}

/** Resolves on the channel's next subscription_succeeded (pusher-js re-subscribes after a reconnect). */
function resubscribed(p, channel, timeout = BACK) {
  return nextEvent(channel, 'pusher:subscription_succeeded', {
    timeout,
    label: `re-subscription (${describeClient(p)})`,
  });
}

function config(window, pingInterval) {
  return `[pusher]\ncontinuity_window = "${window}"\n[limits]\nping_interval = "${pingInterval}"\n`;
}

describe('continuity', () => {
  const cleanups = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }, { timeout: T.hook });

  it('after a drain and a restart on the same data, the missed events arrive once each, in order', { timeout: 4 * T.test }, async () => {
    const dataDir = fs.mkdtempSync(path.join(process.env.FANFARE_JS_TMP || os.tmpdir(), 'fanfare-js-data-'));
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    // Pings an hour apart: only the drain's own save can make this exact.
    const configToml = config('2m', '1h');
    const first = await startServer({ configToml, dataDir });
    const proxy = await startProxy(first.port);
    cleanups.push(() => proxy.close());
    const p = client(proxy, sdkFor(first), 'alice');
    cleanups.push(() => p.disconnect());
    const name = unique('private-continuity-');
    const { channel } = await subscribe(p, name);
    for (const n of [1, 2]) await sdkFor(first).trigger(name, 'msg', { n });
    await gotMessage(p, name, 2);

    proxy.refusing = true;
    const { code } = await first.stop();
    assert.equal(code, 0, 'the drain ends cleanly');
    const second = await startServer({ configToml, dataDir });
    cleanups.push(() => second.stop());
    for (const n of [3, 4]) await sdkFor(second).trigger(name, 'msg', { n });
    const back = resubscribed(p, channel);
    proxy.target = second.port;
    proxy.refusing = false;
    await back;
    await gotMessage(p, name, 4, BACK);
    await sdkFor(second).trigger(name, 'msg', { n: 5 });
    await gotMessage(p, name, 5);
    assert.deepEqual(received(p, name), [1, 2, 3, 4, 5], 'exact: nothing missing, nothing twice');
  });

  it('after a crash (SIGKILL) and a restart on the same data, nothing is missing', { timeout: 4 * T.test }, async () => {
    const dataDir = fs.mkdtempSync(path.join(process.env.FANFARE_JS_TMP || os.tmpdir(), 'fanfare-js-data-'));
    cleanups.push(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const configToml = config('2m', '300ms');
    const first = await startServer({ configToml, dataDir });
    const proxy = await startProxy(first.port);
    cleanups.push(() => proxy.close());
    const p = client(proxy, sdkFor(first), 'bob');
    cleanups.push(() => p.disconnect());
    const name = unique('private-crash-');
    const { channel } = await subscribe(p, name);
    for (const n of [1, 2, 3]) await sdkFor(first).trigger(name, 'msg', { n });
    await gotMessage(p, name, 3);
    await answeredPings(first);

    proxy.refusing = true;
    await first.kill();
    const second = await startServer({ configToml, dataDir });
    cleanups.push(() => second.stop());
    for (const n of [4, 5]) await sdkFor(second).trigger(name, 'msg', { n });
    const back = resubscribed(p, channel);
    proxy.target = second.port;
    proxy.refusing = false;
    await back;
    await gotMessage(p, name, 5, BACK);
    await sdkFor(second).trigger(name, 'msg', { n: 6 });
    await gotMessage(p, name, 6);
    const got = received(p, name);
    // Replayed from the last answered ping: duplicates are allowed, gaps not.
    const resumedAt = got.indexOf(4) === -1 ? -1 : got.lastIndexOf(3) + 1;
    assert.ok(resumedAt > 0, `4 missing: ${got}`);
    assert.deepEqual(got.slice(resumedAt), [4, 5, 6], `in order after the resume: ${got}`);
    for (const n of [1, 2, 3, 4, 5, 6]) assert.ok(got.includes(n), `${n} missing: ${got}`);
  });

  it('a cut link loses nothing within the window, and past it nothing is pretended', { timeout: 4 * T.test }, async () => {
    const server = await startServer({ configToml: config('2s', '200ms') });
    cleanups.push(() => server.stop());
    const sdk = sdkFor(server);
    const proxy = await startProxy(server.port);
    cleanups.push(() => proxy.close());
    const p = client(proxy, sdk, 'carol');
    cleanups.push(() => p.disconnect());
    const name = unique('private-cut-');
    const { channel } = await subscribe(p, name);

    // Within the window: cut, miss 2 and 3, come back.
    await sdk.trigger(name, 'msg', { n: 1 });
    await gotMessage(p, name, 1);
    await answeredPings(server);
    proxy.refusing = true;
    proxy.cut();
    for (const n of [2, 3]) await sdk.trigger(name, 'msg', { n });
    let back = resubscribed(p, channel);
    proxy.refusing = false;
    await back;
    await gotMessage(p, name, 3, BACK);
    assert.deepEqual(received(p, name), [1, 2, 3], 'the point was the last answered ping, after 1');

    // Past the window: cut, miss 4, come back after it.
    await answeredPings(server);
    proxy.refusing = true;
    proxy.cut();
    await sdk.trigger(name, 'msg', { n: 4 });
    // Waiting out the window is the point of this step (2 s, plus the
    // 200 ms ping interval a point saved at a ping is given).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    back = resubscribed(p, channel);
    proxy.refusing = false;
    await back;
    await sdk.trigger(name, 'msg', { n: 5 });
    await gotMessage(p, name, 5);
    assert.deepEqual(received(p, name), [1, 2, 3, 5], 'no replay of 4 after the window');
  });
});
