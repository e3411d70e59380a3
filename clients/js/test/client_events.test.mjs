// Client events (client-*): private and presence only, never echoed to the
// sender, user_id added on presence, 10/s per connection (pusher:error 4301).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  T,
  fence,
  framesOf,
  marker,
  nextEvent,
  serverForSuite,
  subscribe,
  unique,
} from './support.mjs';

describe('client events (enabled)', () => {
  const h = serverForSuite({ clientEvents: true });

  it('private: reach the other subscriber, not the sender', { timeout: T.test }, async () => {
    const name = unique('private-chat-');
    const a = await h.connectedClient({ user: { id: 'alice' } });
    const b = await h.connectedClient({ user: { id: 'bob' } });
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const got = nextEvent(cb, 'client-typing');
    assert.equal(ca.trigger('client-typing', { typing: true }), true);
    assert.deepEqual((await got).data, { typing: true });
    await marker(h, name, [a, b]);
    assert.equal(framesOf(a, name, 'client-typing').length, 0, 'client event echoed to the sender');
  });

  it('presence: the server adds user_id', { timeout: T.test }, async () => {
    const name = unique('presence-chat-');
    const a = await h.connectedClient({ user: { id: 'alice', info: {} } });
    const b = await h.connectedClient({ user: { id: 'bob', info: {} } });
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const got = nextEvent(cb, 'client-hello');
    ca.trigger('client-hello', { text: 'hi' });
    const { data, metadata } = await got;
    assert.deepEqual(data, { text: 'hi' });
    assert.equal(metadata?.user_id, 'alice');
    await marker(h, name, [a, b]);
    assert.equal(framesOf(a, name, 'client-hello').length, 0, 'client event echoed to the sender');
  });

  it('presence with integer user ids: user_id is the number', { timeout: T.test }, async () => {
    const name = unique('presence-ints-');
    const a = await h.connectedClient({ user: { id: 1, info: {} } });
    const b = await h.connectedClient({ user: { id: 2, info: {} } });
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const got = nextEvent(cb, 'client-hello');
    ca.trigger('client-hello', { text: 'hi' });
    const { data, metadata } = await got;
    assert.deepEqual(data, { text: 'hi' });
    assert.equal(metadata?.user_id, 1);
  });

  it('public: refused, not delivered, connection stays open', { timeout: T.test }, async () => {
    const name = unique('public-chat-');
    const a = await h.connectedClient();
    const b = await h.connectedClient();
    const [{ channel: ca }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const statesBefore = a.states.length;
    ca.trigger('client-sneaky', { x: 1 }); // pusher-js itself lets this through
    await fence(a);
    await marker(h, name, [a, b]);
    assert.equal(framesOf(b, name, 'client-sneaky').length, 0, 'client event delivered on a public channel');
    assert.equal(a.connection.state, 'connected');
    assert.equal(a.states.length, statesBefore, 'the sender was disconnected');
  });

  it('more than 10/s: pusher:error 4301, excess dropped, connection stays open', { timeout: T.test }, async () => {
    const name = unique('private-burst-');
    const a = await h.connectedClient({ user: { id: 'alice' } });
    const b = await h.connectedClient({ user: { id: 'bob' } });
    const [{ channel: ca }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const statesBefore = a.states.length;
    const errorsBefore = a.errors.length;
    const BURST = 30;
    for (let i = 0; i < BURST; i++) ca.trigger('client-burst', { i });
    await a.errors.waitFor(
      () => `pusher:error 4301 (errors: ${JSON.stringify(a.errors.map((e) => e.data ?? e))})`,
      (e) => e.type === 'PusherError' && e.data?.code === 4301,
      { from: errorsBefore, timeout: T.event },
    );
    await fence(a);
    await marker(h, name, [a, b]);
    const delivered = framesOf(b, name, 'client-burst').length;
    assert.ok(delivered >= 1, 'no client event got through at all');
    assert.ok(delivered <= 20, `${delivered} of ${BURST} burst events delivered within a second`);
    assert.equal(a.connection.state, 'connected');
    assert.equal(a.states.length, statesBefore, 'rate limiting must not close the connection');
  });
});

describe('client events (disabled for the app)', () => {
  const h = serverForSuite({ clientEvents: false });

  it('are not delivered', { timeout: T.test }, async () => {
    const name = unique('private-quiet-');
    const a = await h.connectedClient({ user: { id: 'alice' } });
    const b = await h.connectedClient({ user: { id: 'bob' } });
    const [{ channel: ca }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    ca.trigger('client-nope', {});
    await fence(a);
    await marker(h, name, [a, b]);
    assert.equal(framesOf(b, name, 'client-nope').length, 0);
    assert.equal(a.connection.state, 'connected');
  });
});

