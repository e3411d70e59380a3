// Private channels: pusher-js asks the local auth endpoint (pusher SDK
// authorizeChannel) and the server checks the signature.
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

describe('private channels', () => {
  const h = serverForSuite();

  it('subscribes with SDK-signed auth and receives triggers', { timeout: T.test }, async () => {
    const p = await h.connectedClient({ user: { id: 'u1' } });
    const name = unique('private-orders-');
    const { channel } = await subscribe(p, name);
    assert.ok(
      h.auth.requests.some((r) => r.path === '/channel-auth' && r.channel === name && r.socketId === p.connection.socket_id),
      'pusher-js did not ask the auth endpoint',
    );
    const got = nextEvent(channel, 'order-created');
    await h.sdk.trigger(name, 'order-created', { id: 7 });
    assert.deepEqual((await got).data, { id: 7 });
  });

  it('a signature made with the wrong secret gets pusher:subscription_error and nothing else', { timeout: T.test }, async () => {
    const p = await h.connectedClient({ user: { id: 'u2' }, mode: 'forge' });
    const name = unique('private-forged-');
    const channel = p.subscribe(name);
    const { data } = await nextEvent(channel, 'pusher:subscription_error', { label: `subscription_error on ${name}` });
    assert.ok(data, 'subscription_error without data');
    // It came from the server (the auth endpoint answered 200), and the channel is not subscribed.
    assert.equal(framesOf(p, name, 'pusher:subscription_error').length, 1);
    assert.equal(framesOf(p, name, 'pusher_internal:subscription_succeeded').length, 0);
    assert.equal(channel.subscribed, false);
    assert.equal(p.connection.state, 'connected', 'a refused subscription must not close the connection');

    // Triggers on the refused channel do not reach this socket.
    const other = unique('public-');
    await subscribe(p, other);
    await fence(p);
    await h.sdk.trigger(name, 'leak', {});
    await marker(h, other, [p]);
    assert.equal(framesOf(p, name, 'leak').length, 0);
  });

  it('an auth endpoint that refuses (403) gives pusher-js a subscription_error', { timeout: T.test }, async () => {
    const p = await h.connectedClient({ user: { id: 'u3' }, mode: 'deny' });
    const channel = p.subscribe(unique('private-denied-'));
    const { data } = await nextEvent(channel, 'pusher:subscription_error');
    assert.equal(data.status, 403);
    assert.equal(p.connection.state, 'connected');
  });
});
