// Moderation and publish limits as pusher-js sees them: slow mode and a
// user's rate on client events (pusher:error 4301 with retry_after_ms, the
// event not relayed), a ban (the connection is closed with 4100, pusher-js
// reconnects by itself, the banned channel refuses the resubscription and
// the others resume), a mute (pusher:error, still receiving).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { API_KEY, T, fence, framesOf, leftConnected, marker, moderate, nextEvent, serverForSuite, subscribe, unique } from './support.mjs';

function pusherError(p, from, predicate, label) {
  return p.errors.waitFor(
    () => `${label} (errors: ${JSON.stringify(p.errors.map((e) => e.data ?? e))})`,
    (e) => e.type === 'PusherError' && predicate(e.data ?? {}),
    { from, timeout: T.event },
  );
}

describe('slow mode on client events (pusher-js)', () => {
  const h = serverForSuite({ clientEvents: true, configToml: '[namespaces.""]\nslow_mode = "10s"\n' });

  it('the second client event within the interval gets pusher:error 4301 with retry_after_ms and is not relayed', { timeout: T.test }, async () => {
    const name = unique('presence-slow-');
    const a = await h.connectedClient({ user: { id: 'alice', info: {} } });
    const b = await h.connectedClient({ user: { id: 'bob', info: {} } });
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const errorsBefore = a.errors.length;
    const first = nextEvent(cb, 'client-comment');
    ca.trigger('client-comment', { n: 1 });
    assert.deepEqual((await first).data, { n: 1 });
    ca.trigger('client-comment', { n: 2 });
    const refused = await pusherError(a, errorsBefore, (d) => d.code === 4301, 'pusher:error 4301');
    assert.match(refused.data.message, /^slow mode/);
    assert.ok(refused.data.retry_after_ms > 5000 && refused.data.retry_after_ms <= 10_000, JSON.stringify(refused.data));
    await fence(a);
    await marker(h, name, [a, b]);
    assert.equal(framesOf(b, name, 'client-comment').length, 1, 'the refused event was relayed');
    assert.equal(a.connection.state, 'connected');
  });
});

describe('bans and mutes (pusher-js)', () => {
  const h = serverForSuite({ clientEvents: true });

  it('a banned user is closed with 4100, reconnects by itself, and only the banned channel refuses it', { timeout: T.test }, async () => {
    const banned = unique('presence-stage-');
    const other = unique('presence-lobby-');
    const a = await h.connectedClient({ user: { id: 'troll', info: {} } });
    await Promise.all([subscribe(a, banned), subscribe(a, other)]);
    const statesBefore = a.states.length;
    const refusal = nextEvent(a.channel(banned), 'pusher:subscription_error', { timeout: T.connect + T.event });
    const result = await moderate(h, { action: 'ban', user: 'troll', channel: banned, reason: 'spam' });
    assert.equal(result.closed, 1);
    await leftConnected(a, { from: statesBefore });
    const { data } = await refusal;
    assert.equal(data.status, 403);
    assert.match(data.error, /banned/);
    await a.states.waitFor('connected again', (s) => s.current === 'connected', { from: statesBefore, timeout: T.connect + T.event });
    const resumed = nextEvent(a.channel(other), 'after-ban');
    await h.sdk.trigger(other, 'after-ban', { ok: true });
    assert.deepEqual((await resumed).data, { ok: true }, 'the other channel resumed');
  });

  it('a muted user gets pusher:error for its client events and still hears the room', { timeout: T.test }, async () => {
    const name = unique('presence-room-');
    const a = await h.connectedClient({ user: { id: 'loud', info: {} } });
    const b = await h.connectedClient({ user: { id: 'quiet', info: {} } });
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    await moderate(h, { action: 'mute', user: 'loud', channel: name });
    const errorsBefore = a.errors.length;
    ca.trigger('client-shout', { text: 'HEY' });
    const refused = await pusherError(a, errorsBefore, (d) => /muted/.test(d.message ?? ''), 'pusher:error muted');
    assert.equal(refused.data.code, null);
    const heard = nextEvent(ca, 'client-reply');
    cb.trigger('client-reply', { text: 'hi' });
    assert.deepEqual((await heard).data, { text: 'hi' });
    await marker(h, name, [a, b]);
    assert.equal(framesOf(b, name, 'client-shout').length, 0, 'the muted event was relayed');
  });

  it('a backend deletes with a fanfare:delete trigger and pusher-js subscribers get the event', { timeout: T.test }, async () => {
    const name = unique('news-');
    const p = await h.connectedClient();
    const { channel } = await subscribe(p, name);
    const first = nextEvent(channel, 'headline');
    await h.sdk.trigger(name, 'headline', { text: 'oops' });
    await first;
    const told = nextEvent(channel, 'fanfare:delete');
    await h.sdk.trigger(name, 'fanfare:delete', { offset: 1 });
    assert.deepEqual((await told).data, { offsets: [1] });
    await assert.rejects(h.sdk.trigger(name, 'fanfare:delete', { offset: 1 }), (e) => e.status === 404, 'deleting again');
    const history = await fetch(`${h.server.httpUrl}/api/history?channel=${name}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    }).then((r) => r.json());
    assert.deepEqual(history.publications[0], { offset: 1, time: history.publications[0].time, deleted: true });
  });
});
