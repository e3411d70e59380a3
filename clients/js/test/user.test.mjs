// User features: signin, server-to-user (sendToUser), watchlist, terminate.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  T,
  fence,
  laravelUserAuth,
  leftConnected,
  marker,
  nextEvent,
  receivedFrame,
  serverForSuite,
  signedIn,
  subscribe,
  unique,
  waitFor,
} from './support.mjs';

describe('user features', () => {
  const h = serverForSuite();

  it('signin: pusher.signin() succeeds with the SDK-signed user data', { timeout: T.test }, async () => {
    const p = await h.connectedClient({ user: { id: 'alice', info: { name: 'Alice' } } });
    const userData = await signedIn(p);
    assert.equal(userData.id, 'alice');
    assert.deepEqual(userData.user_info, { name: 'Alice' });
    const ok = p.received.find((m) => m.event === 'pusher:signin_success');
    assert.ok(ok, 'no pusher:signin_success frame');
    assert.equal(typeof ok.data.user_data, 'string', 'signin_success data.user_data must be the JSON string');
    assert.equal(p.user.serverToUserChannel.name, '#server-to-user-alice');
  });

  it('signin with an integer id (Laravel) is accepted; routing and terminate go by its text', { timeout: T.test }, async () => {
    const id = 4000 + Math.floor(Math.random() * 100000);
    // pusher-js: the server answers signin_success and keeps the socket open.
    // (pusher-js 8.6.0 then drops the signin itself: src/core/user.ts wants a
    // string id, so it never subscribes #server-to-user-<id>.)
    const p = await h.connectedClient({ user: { id, info: { name: 'Int' } } });
    const from = p.received.length;
    p.signin();
    const ok = await receivedFrame(p, (m) => m.event === 'pusher:signin_success', { from, label: 'pusher:signin_success' });
    assert.equal(ok.data.user_data, JSON.stringify({ id, user_info: { name: 'Int' } }), 'the signed string, echoed');
    await fence(p);
    assert.equal(p.connection.state, 'connected');

    // A client that takes the id as it is: #server-to-user-<id>, sendToUser, terminate.
    const r = await h.raw();
    r.send('pusher:signin', laravelUserAuth(h.app.key, h.app.secret, r.socketId, { id }));
    await r.waitMessage('pusher:signin_success', (m) => m.event === 'pusher:signin_success');
    const channel = `#server-to-user-${id}`;
    r.send('pusher:subscribe', { channel, auth: '' });
    await r.waitMessage(`subscription_succeeded on ${channel}`, (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === channel);
    assert.equal((await h.sdk.sendToUser(String(id), 'notice', { n: 1 })).status, 200);
    const notice = await r.waitMessage('notice', (m) => m.event === 'notice' && m.channel === channel);
    assert.deepEqual(notice.data, { n: 1 });
    assert.equal((await h.sdk.terminateUserConnections(String(id))).status, 200);
    const closed = await waitFor('the signed-in socket to be closed', T.event, (resolve) => {
      r.closed.then(resolve);
    });
    assert.ok(closed.code >= 4000, `closed with ${closed.code}`);
  });

  it('sendToUser reaches every connection of that user and no one else', { timeout: T.test }, async () => {
    const user = unique('u');
    const a1 = await h.connectedClient({ user: { id: user } });
    const a2 = await h.connectedClient({ user: { id: user } });
    const other = unique('v');
    const b = await h.connectedClient({ user: { id: other } });
    await Promise.all([signedIn(a1), signedIn(a2), signedIn(b)]);

    const got = [nextEvent(a1.user, 'notice'), nextEvent(a2.user, 'notice')];
    const res = await h.sdk.sendToUser(user, 'notice', { text: 'for you' });
    assert.equal(res.status, 200);
    for (const { data } of await Promise.all(got)) assert.deepEqual(data, { text: 'for you' });

    const toB = nextEvent(b.user, 'marker');
    await h.sdk.sendToUser(other, 'marker', {});
    await toB;
    assert.equal(b.received.filter((m) => m.event === 'notice').length, 0, 'another user got the notice');
  });

  it('a signin signed with the wrong secret is refused', { timeout: T.test }, async () => {
    const p = await h.connectedClient({ user: { id: 'mallory' }, mode: 'forge' });
    const from = p.received.length;
    const statesFrom = p.states.length;
    p.signin();
    // Either a pusher:error or the connection being closed (4009) is acceptable.
    await waitFor('the forged signin to be refused (pusher:error or disconnect)', T.event, (resolve) => {
      const check = () => {
        if (p.received.slice(from).some((m) => m.event === 'pusher:error')) resolve();
        if (p.states.slice(statesFrom).some((s) => s.previous === 'connected')) resolve();
      };
      check();
      const u1 = p.received.watch(check);
      const u2 = p.states.watch(check);
      return () => {
        u1();
        u2();
      };
    });
    assert.equal(p.received.filter((m) => m.event === 'pusher:signin_success').length, 0);
  });

  it('#server-to-user-<id> cannot be subscribed without signing in as <id>', { timeout: T.test }, async () => {
    const victim = unique('victim');
    const r = await h.raw();
    const channel = `#server-to-user-${victim}`;
    r.send('pusher:subscribe', { channel, auth: '' });
    await r.waitMessage(
      'subscription_error (or pusher:error) for the foreign server-to-user channel',
      (m) => (m.event === 'pusher:subscription_error' && m.channel === channel) || m.event === 'pusher:error',
    );
    // And nothing sent to that user reaches this socket.
    const pub = unique('pub-');
    r.send('pusher:subscribe', { channel: pub, auth: '' });
    await r.waitMessage('subscription_succeeded', (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === pub);
    await h.sdk.sendToUser(victim, 'private-note', { secret: 1 });
    await h.sdk.trigger(pub, 'marker', {});
    await r.waitMessage('marker', (m) => m.event === 'marker' && m.channel === pub);
    assert.ok(!r.messages.some((m) => m.event === 'private-note'), 'server-to-user event leaked');
  });

  it('watchlist: online and offline events for watched users', { timeout: T.test }, async () => {
    const carol = unique('carol');
    const bob = unique('bob');
    const carolP = await h.connectedClient({ user: { id: carol } });
    await signedIn(carolP);

    const alice = h.client({ user: { id: unique('alice'), watchlist: [bob, carol] } });
    const online = [];
    const offline = [];
    const watchlistEvents = [];
    alice.user.watchlist.bind('online', (e) => online.push(e));
    alice.user.watchlist.bind('offline', (e) => offline.push(e));
    alice.connection.bind('message', (m) => {
      if (m.event === 'pusher_internal:watchlist_events') watchlistEvents.push(m);
    });
    await signedIn(alice);

    const watch = (list, id, label) =>
      waitFor(() => `${label} (watchlist events so far: ${JSON.stringify(watchlistEvents)})`, T.event, (resolve) => {
        const check = () => {
          if (list.some((e) => e.user_ids?.includes(id))) resolve();
        };
        check();
        return alice.received.watch(check);
      });

    await watch(online, carol, `initial online for ${carol} (already signed in)`);

    const bobP = await h.connectedClient({ user: { id: bob } });
    await signedIn(bobP);
    await watch(online, bob, `online for ${bob} after signin`);

    bobP.disconnect();
    await watch(offline, bob, `offline for ${bob} after disconnect`);
    assert.ok(!offline.some((e) => e.user_ids?.includes(carol)), `${carol} reported offline while online`);
  });

  it('terminateUserConnections disconnects the signed-in user only', { timeout: T.test }, async () => {
    const victim = unique('t');
    const bystander = unique('b');
    const v = await h.connectedClient({ user: { id: victim } });
    const b = await h.connectedClient({ user: { id: bystander } });
    await Promise.all([signedIn(v), signedIn(b)]);
    // The same user id on a presence channel without signin is not affected (Pusher docs).
    const room = unique('presence-t-');
    const presenceOnly = await h.connectedClient({ user: { id: victim, info: {} } });
    await subscribe(presenceOnly, room);

    const vFrom = v.states.length;
    const bFrom = b.states.length;
    const pFrom = presenceOnly.states.length;
    const res = await h.sdk.terminateUserConnections(victim);
    assert.equal(res.status, 200);
    await leftConnected(v, { from: vFrom });

    const toB = nextEvent(b.user, 'still-here');
    await h.sdk.sendToUser(bystander, 'still-here', {});
    await toB;
    await marker(h, room, [presenceOnly]);
    assert.equal(b.states.length, bFrom, 'the bystander was disconnected');
    assert.equal(presenceOnly.states.length, pFrom, 'a connection that never signed in was disconnected');
  });

  it('presence without channel_data uses the signed-in user (Pusher docs)', { timeout: T.test }, async () => {
    const id = unique('s');
    const p = await h.connectedClient({ user: { id, info: { name: 'Signed' } }, mode: 'no-channel-data' });
    await signedIn(p);
    const room = unique('presence-signed-');
    const { channel } = await subscribe(p, room);
    assert.equal(channel.members.count, 1);
    assert.deepEqual(channel.members.me, { id, info: { name: 'Signed' } });
  });
});

