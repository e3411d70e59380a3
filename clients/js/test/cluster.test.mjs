// Pusher compatibility across the nodes of a cluster: a private redis-server
// on a free port and `fanfare serve` processes joined to it
// (FANFARE_CLUSTER_URL, like `--cluster`), real pusher-js clients on
// different nodes and the `pusher` SDK triggering on yet another one.
//
// Without redis-server these tests skip with a message; with CI=true they fail.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {
  APP,
  PusherClient,
  T,
  clientOptions,
  connected,
  fence,
  framesOf,
  instrument,
  nextEvent,
  receivedFrame,
  sdkFor,
  startAuthServer,
  startServer,
  startWebhookReceiver,
  subscribe,
  unique,
  waitFor,
} from './support.mjs';

const HAVE_REDIS = spawnSync('redis-server', ['--version']).status === 0;
if (!HAVE_REDIS && process.env.CI === 'true') {
  throw new Error('redis-server is not installed, and CI must run the cluster tests');
}
const SKIP = HAVE_REDIS ? false : 'redis-server is not installed (CI=true makes this a failure)';
if (SKIP) console.log(`cluster tests skipped: ${SKIP}`);

// ---------------------------------------------------------------------------
// Redis, nodes, a TCP load balancer

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(process.env.FANFARE_JS_TMP || os.tmpdir(), 'fanfare-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  process.on('exit', () => child.kill('SIGKILL'));
  await waitFor(`redis-server on ${port}`, T.start, (resolve) => {
    let stop = false;
    const probe = () => {
      if (stop) return;
      const sock = net.connect(port, '127.0.0.1', () => {
        sock.end();
        resolve();
      });
      sock.on('error', () => setTimeout(probe, 20));
    };
    probe();
    return () => {
      stop = true;
    };
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function startNode(redis, webhooks = null) {
  return startServer({
    clientEvents: true,
    webhooks,
    env: { FANFARE_CLUSTER_URL: redis.url, FANFARE_CLUSTER_NODE_LEASE: '2s', FANFARE_CLUSTER_HEARTBEAT: '500ms' },
  });
}

async function ready(node) {
  await waitFor(`${node.httpUrl}/ready`, T.start, (resolve) => {
    let stop = false;
    const probe = async () => {
      if (stop) return;
      try {
        const res = await fetch(`${node.httpUrl}/ready`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) return resolve();
      } catch {}
      setTimeout(probe, 20);
    };
    probe();
    return () => {
      stop = true;
    };
  });
}

/** A TCP load balancer: round robin over the backends in `live`. */
async function startBalancer() {
  const live = [];
  let next = 0;
  const sockets = new Set();
  const srv = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (live.length === 0) return client.destroy();
    const port = live[next++ % live.length].port;
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const port = await new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv.address().port)));
  return {
    port,
    live,
    remove(node) {
      const i = live.indexOf(node);
      if (i >= 0) live.splice(i, 1);
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => srv.close(r));
    },
  };
}

// ---------------------------------------------------------------------------

describe('a cluster of three nodes', { skip: SKIP }, () => {
  let redis;
  let auth;
  let nodes = [];
  const clients = [];

  before(async () => {
    redis = await startRedis();
    auth = await startAuthServer(APP);
    nodes = await Promise.all([0, 1, 2].map(() => startNode(redis)));
    await Promise.all(nodes.map(ready));
  }, { timeout: T.hook });

  after(async () => {
    for (const p of clients) p.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    await auth?.close();
    await redis?.stop();
  }, { timeout: T.hook });

  const clientOn = async (node, opts = {}) => {
    const p = instrument(new PusherClient(APP.key, clientOptions(node, auth, opts)));
    clients.push(p);
    await connected(p);
    return p;
  };
  const sdk = (node) => sdkFor(node, APP);

  it('events triggered on node C reach clients on A and B once, in order; socket_id excludes across nodes', { timeout: T.test }, async () => {
    const name = unique('feed-');
    const [a, b1, b2] = [await clientOn(nodes[0]), await clientOn(nodes[1]), await clientOn(nodes[1])];
    await Promise.all([a, b1, b2].map((p) => subscribe(p, name)));
    const c = sdk(nodes[2]);
    const N = 50;
    for (let n = 0; n < N; n++) await c.trigger(name, 'seq', { n });
    for (const p of [a, b1, b2]) {
      await receivedFrame(p, (m) => m.event === 'seq' && m.channel === name && m.data.n === N - 1, { label: `seq ${N - 1}` });
    }
    await c.trigger(name, 'end', {});
    for (const p of [a, b1, b2]) {
      await receivedFrame(p, (m) => m.event === 'end' && m.channel === name, { label: 'end' });
      const seen = framesOf(p, name, 'seq').map((m) => m.data.n);
      assert.deepEqual(seen, [...Array(N).keys()], 'every event once, in trigger order');
    }

    // b1 lives on node B, the trigger goes to node C.
    await c.trigger(name, 'not-for-b1', { x: 1 }, { socket_id: b1.connection.socket_id });
    await c.trigger(name, 'after', {});
    for (const p of [a, b1, b2]) await receivedFrame(p, (m) => m.event === 'after' && m.channel === name, { label: 'after' });
    assert.equal(framesOf(a, name, 'not-for-b1').length, 1);
    assert.equal(framesOf(b2, name, 'not-for-b1').length, 1);
    assert.equal(framesOf(b1, name, 'not-for-b1').length, 0, 'the excluded connection on another node got it');
  });

  it('client events cross nodes on private and presence channels, never back to the sender', { timeout: T.test }, async () => {
    const priv = unique('private-chat-');
    const room = unique('presence-chat-');
    const alice = await clientOn(nodes[0], { user: { id: 'alice' } });
    const bob = await clientOn(nodes[1], { user: { id: 'bob' } });
    const [{ channel: aPriv }, { channel: bPriv }] = await Promise.all([subscribe(alice, priv), subscribe(bob, priv)]);
    const [{ channel: aRoom }, { channel: bRoom }] = await Promise.all([subscribe(alice, room), subscribe(bob, room)]);
    await waitFor('bob sees alice in the room', T.event, (resolve) => {
      if (bRoom.members.count === 2) return resolve();
      bRoom.bind('pusher:member_added', () => bRoom.members.count === 2 && resolve());
    });

    const heard = nextEvent(bPriv, 'client-typing');
    assert.ok(aPriv.trigger('client-typing', { who: 'alice' }));
    assert.deepEqual((await heard).data, { who: 'alice' });

    const heardInRoom = nextEvent(aRoom, 'client-wave');
    assert.ok(bRoom.trigger('client-wave', { who: 'bob' }));
    const wave = await heardInRoom;
    assert.deepEqual(wave.data, { who: 'bob' });
    assert.equal(wave.metadata?.user_id, 'bob', 'presence client events carry the sender');

    await fence(alice);
    await fence(bob);
    const c = sdk(nodes[2]);
    await c.trigger([priv, room], 'marker', {});
    for (const [p, ch] of [[alice, priv], [bob, priv], [alice, room], [bob, room]]) {
      await receivedFrame(p, (m) => m.event === 'marker' && m.channel === ch, { label: `marker on ${ch}` });
    }
    assert.equal(framesOf(alice, priv, 'client-typing').length, 0, 'the sender got its own client event');
    assert.equal(framesOf(bob, room, 'client-wave').length, 0, 'the sender got its own client event');
    assert.equal(framesOf(bob, priv, 'client-typing').length, 1);
  });

  it('presence: members from every node; member_added / member_removed once per user anywhere; numeric ids stay numbers', { timeout: T.test }, async () => {
    const room = unique('presence-cluster-');
    const observer = await clientOn(nodes[0], { user: { id: 'observer' } });
    const { channel: obs } = await subscribe(observer, room);
    const alice1 = await clientOn(nodes[1], { user: { id: 'alice', info: { name: 'Alice' } } });
    const added = nextEvent(obs, 'pusher:member_added');
    await subscribe(alice1, room);
    assert.deepEqual((await added).data, { id: 'alice', info: { name: 'Alice' } });

    const laravel = await clientOn(nodes[2], { user: { id: 42, info: { name: 'Int' } } });
    const addedInt = nextEvent(obs, 'pusher:member_added');
    const { channel: intCh } = await subscribe(laravel, room);
    assert.deepEqual((await addedInt).data, { id: 42, info: { name: 'Int' } }, 'a numeric id crosses nodes as a number');
    const succeeded = framesOf(laravel, room, 'pusher_internal:subscription_succeeded')[0];
    const ids = succeeded.data.presence.ids;
    assert.deepEqual([...ids].sort((x, y) => String(x).localeCompare(String(y))), [42, 'alice', 'observer'], JSON.stringify(ids));
    assert.equal(succeeded.data.presence.count, 3);
    assert.deepEqual(intCh.members.get('alice'), { id: 'alice', info: { name: 'Alice' } }, 'members of other nodes, with their info');

    // alice's second connection, on another node: no second member_added.
    const alice2 = await clientOn(nodes[2], { user: { id: 'alice', info: { name: 'Alice' } } });
    const { channel: a2 } = await subscribe(alice2, room);
    assert.equal(a2.members.count, 3);
    // alice leaves node B but stays on node C: no member_removed.
    alice1.disconnect();
    const users = async () => {
      const res = await sdk(nodes[0]).get({ path: `/channels/${room}/users` });
      return (await res.json()).users.map((u) => u.id);
    };
    await waitFor('alice1 gone from the engine', T.event, (resolve) => {
      const poll = async () => {
        const res = await sdk(nodes[0]).get({ path: `/channels/${room}`, params: { info: 'subscription_count' } });
        if ((await res.json()).subscription_count === 3) return resolve();
        setTimeout(poll, 20);
      };
      poll();
    });
    // The HTTP API shows ids as text, as Pusher's does (pusher_user_ids.rs).
    assert.deepEqual((await users()).sort(), ['42', 'alice', 'observer']);

    const removed = nextEvent(obs, 'pusher:member_removed');
    alice2.disconnect();
    assert.deepEqual((await removed).data, { id: 'alice', info: { name: 'Alice' } });
    const removedInt = nextEvent(obs, 'pusher:member_removed');
    laravel.disconnect();
    assert.deepEqual((await removedInt).data, { id: 42, info: { name: 'Int' } });
    const frame = framesOf(observer, room, 'pusher_internal:member_removed').find((m) => m.data.user_id !== 'alice');
    assert.equal(frame.data.user_id, 42, JSON.stringify(frame));

    await sdk(nodes[1]).trigger(room, 'marker', {});
    await receivedFrame(observer, (m) => m.event === 'marker' && m.channel === room, { label: 'marker' });
    assert.equal(framesOf(observer, room, 'pusher_internal:member_added').length, 2, 'alice and 42, once each');
    assert.equal(framesOf(observer, room, 'pusher_internal:member_removed').length, 2);
    assert.equal(obs.members.count, 1);
  });
});

describe('webhooks across nodes', { skip: SKIP }, () => {
  let redis;
  let auth;
  let hooks;
  let nodes = [];
  const clients = [];

  before(async () => {
    redis = await startRedis();
    auth = await startAuthServer(APP);
    hooks = await startWebhookReceiver(APP);
    const webhooks = [{ url: hooks.url, events: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] }];
    nodes = await Promise.all([0, 1].map(() => startNode(redis, webhooks)));
    await Promise.all(nodes.map(ready));
  }, { timeout: T.hook });

  after(async () => {
    for (const p of clients) p.disconnect();
    await Promise.all(nodes.map((n) => n.stop()));
    await auth?.close();
    await hooks?.close();
    await redis?.stop();
  }, { timeout: T.hook });

  const clientOn = async (node, opts = {}) => {
    const p = instrument(new PusherClient(APP.key, clientOptions(node, auth, opts)));
    clients.push(p);
    await connected(p);
    return p;
  };

  it('one occupied / member_added when users arrive on both nodes at once, one vacated / member_removed when the last leaves anywhere', { timeout: T.test }, async () => {
    const room = unique('presence-hooks-');
    const of = (name) => hooks.events.filter((e) => e.name === name && e.channel === room);
    const pairs = await Promise.all([0, 1, 0, 1].map((n, i) => clientOn(nodes[n], { user: { id: i < 2 ? 'alice' : 'bob' } })));
    await Promise.all(pairs.map((p) => subscribe(p, room)));
    await hooks.waitEvent('bob added', (e) => e.name === 'member_added' && e.channel === room && e.user_id === 'bob');
    await hooks.waitEvent('alice added', (e) => e.name === 'member_added' && e.channel === room && e.user_id === 'alice');
    await hooks.waitEvent('occupied', (e) => e.name === 'channel_occupied' && e.channel === room);
    for (const p of pairs) p.disconnect();
    await hooks.waitEvent('vacated', (e) => e.name === 'channel_vacated' && e.channel === room);
    await hooks.waitEvent('alice removed', (e) => e.name === 'member_removed' && e.channel === room && e.user_id === 'alice');
    await hooks.waitEvent('bob removed', (e) => e.name === 'member_removed' && e.channel === room && e.user_id === 'bob');
    // A webhook batch window after the last one: nothing more.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(of('channel_occupied').length, 1);
    assert.equal(of('channel_vacated').length, 1);
    assert.deepEqual(of('member_added').map((e) => e.user_id).sort(), ['alice', 'bob']);
    assert.deepEqual(of('member_removed').map((e) => e.user_id).sort(), ['alice', 'bob']);
  });
});

describe('a rolling restart of three nodes under traffic', { skip: SKIP }, () => {
  it('clients reconnect elsewhere, see no duplicate, and presence is exact at the end', { timeout: 90_000 * (Number(process.env.FANFARE_JS_TIMEOUT_SCALE) || 1) }, async () => {
    const redis = await startRedis();
    const auth = await startAuthServer(APP);
    const balancer = await startBalancer();
    const nodes = await Promise.all([0, 1, 2].map(() => startNode(redis)));
    await Promise.all(nodes.map(ready));
    balancer.live.push(...nodes);
    const via = { port: balancer.port };
    const clients = [];
    let publishing = true;
    try {
      const feed = unique('feed-');
      const room = unique('presence-rolling-');
      const USERS = 9;
      for (let i = 0; i < USERS; i++) {
        const p = instrument(new PusherClient(APP.key, clientOptions(via, auth, { user: { id: `u${i}` } })));
        clients.push(p);
      }
      await Promise.all(clients.map((p) => connected(p)));
      await Promise.all(clients.flatMap((p) => [subscribe(p, feed), subscribe(p, room)]));

      // Traffic: a trigger every 10 ms through the balancer.
      const sdk = sdkFor(via, APP);
      let sent = 0;
      let failed = 0;
      const publisher = (async () => {
        while (publishing) {
          try {
            await sdk.trigger(feed, 'seq', { n: sent });
            sent += 1;
          } catch {
            failed += 1;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      })();

      // Reconnect time of each client: from leaving "connected" to "connected" again.
      const reconnects = [];
      for (const p of clients) {
        let leftAt = null;
        p.connection.bind('state_change', ({ previous, current }) => {
          if (previous === 'connected' && current !== 'connected') leftAt = Date.now();
          if (current === 'connected' && leftAt !== null) {
            reconnects.push(Date.now() - leftAt);
            leftAt = null;
          }
        });
      }

      for (let i = 0; i < 3; i++) {
        const old = nodes[i];
        balancer.remove(old);
        const left = clients.map((p) => p.states.length);
        const stopped = await old.stop();
        assert.ok(stopped.bySelf, `node ${i} stopped by itself after SIGTERM`);
        // Its clients left "connected"; everyone is connected again and
        // subscribed (pusher-js resubscribes), through another node.
        await waitFor(() => `every client connected again after stopping node ${i}`, T.connect, (resolve) => {
          const check = () => {
            const moved = clients.some((p, k) => p.states.slice(left[k]).some((s) => s.previous === 'connected'));
            const back = clients.every((p) => p.connection.state === 'connected' && p.channel(feed)?.subscribed && p.channel(room)?.subscribed);
            if (moved && back) return resolve();
            setTimeout(check, 20);
          };
          check();
        });
        const fresh = await startNode(redis);
        await ready(fresh);
        nodes[i] = fresh;
        balancer.live.push(fresh);
        // Traffic goes on for a while before the next node stops.
        const until = sent + 40;
        await waitFor(() => `40 more triggers (${sent} sent, ${failed} failed)`, T.event * 2, (resolve) => {
          const check = () => (sent >= until ? resolve() : setTimeout(check, 10));
          check();
        });
      }
      publishing = false;
      await publisher;
      assert.ok(sent > 50, `only ${sent} triggers went through`);

      // A last event, through a node, after which each client's feed is complete.
      await sdkFor(nodes[0], APP).trigger(feed, 'end', {});
      await Promise.all(clients.map((p) => receivedFrame(p, (m) => m.event === 'end' && m.channel === feed, { label: 'end' })));
      let missed = 0;
      for (const [i, p] of clients.entries()) {
        const seen = framesOf(p, feed, 'seq').map((m) => m.data.n);
        for (let k = 1; k < seen.length; k++) {
          assert.ok(seen[k] > seen[k - 1], `client ${i}: ${seen[k]} after ${seen[k - 1]} (a duplicate or out of order)`);
        }
        missed += sent - seen.length;
      }

      // Presence exact: every user once, no ghost of a stopped node, as the
      // API and every client see it.
      const expected = [...Array(USERS).keys()].map((i) => `u${i}`).sort();
      const api = sdkFor(nodes[1], APP);
      let listed = [];
      await waitFor(() => `the API to list exactly ${expected} (got ${listed})`, T.event, (resolve) => {
        const poll = async () => {
          const res = await api.get({ path: `/channels/${room}/users` });
          listed = (await res.json()).users.map((u) => u.id).sort();
          if (JSON.stringify(listed) === JSON.stringify(expected)) return resolve();
          setTimeout(poll, 50);
        };
        poll();
      });
      for (const p of clients) {
        const members = [];
        p.channel(room).members.each((m) => members.push(m.id));
        assert.deepEqual(members.sort(), expected, `client ${p.connection.socket_id} sees the room`);
      }
      reconnects.sort((x, y) => x - y);
      const median = reconnects[Math.floor(reconnects.length / 2)];
      console.log(
        `rolling restart: ${sent} triggers (${failed} failed), ${reconnects.length} reconnects, ` +
          `reconnect ms median ${median} max ${reconnects.at(-1)}, events missed during reconnects ${missed} of ${sent * USERS}`,
      );
    } finally {
      publishing = false;
      for (const p of clients) p.disconnect();
      await balancer.close();
      await Promise.all(nodes.map((n) => n.stop()));
      await auth.close();
      await redis.stop();
    }
  });
});
