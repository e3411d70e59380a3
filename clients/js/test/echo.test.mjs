// Laravel Echo (broadcaster: 'pusher') on top of a real pusher-js client.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import Echo from 'laravel-echo';

import { T, connected, serverForSuite, unique, waitFor } from './support.mjs';

/** Resolve when an Echo channel is subscribed, reject on its subscription error. */
function echoSubscribed(label, channel) {
  return waitFor(label, T.event + T.connect, (resolve, reject) => {
    channel.subscribed(() => resolve());
    channel.error((e) => reject(new Error(`${label}: subscription error ${JSON.stringify(e)}`)));
  });
}

/** Resolve with the first call of an Echo callback registration. */
function firstCall(label, register) {
  return waitFor(label, T.event + T.connect, (resolve) => {
    register((...args) => resolve(args));
  });
}

describe('Laravel Echo', () => {
  const h = serverForSuite({ clientEvents: true });

  async function echoFor(user) {
    const client = h.client({ user });
    await connected(client);
    return new Echo({ broadcaster: 'pusher', client, withoutInterceptors: true });
  }

  it('private(...).listen(".event") and namespaced listen("Event")', { timeout: T.test }, async () => {
    const echo = await echoFor({ id: 'alice' });
    const name = unique('orders-');
    const channel = echo.private(name);
    const subscribed = echoSubscribed(`Echo subscribed to private-${name}`, channel);
    const dotted = firstCall('.order-shipped', (cb) => channel.listen('.order-shipped', cb));
    const namespaced = firstCall('App\\Events\\OrderPaid', (cb) => channel.listen('OrderPaid', cb));
    await subscribed;
    await h.sdk.trigger(`private-${name}`, 'order-shipped', { order: 1 });
    await h.sdk.trigger(`private-${name}`, 'App\\Events\\OrderPaid', { order: 2 });
    assert.deepEqual((await dotted)[0], { order: 1 });
    assert.deepEqual((await namespaced)[0], { order: 2 });
  });

  it('join(...).here / joining / leaving, with Laravel\'s integer user ids', { timeout: T.test }, async () => {
    const room = unique('room-');
    const alice = await echoFor({ id: 1, info: { name: 'Alice' } });
    const aliceRoom = alice.join(room);
    const aliceHere = firstCall('alice here()', (cb) => aliceRoom.here(cb));
    const joining = firstCall('alice joining()', (cb) => aliceRoom.joining(cb));
    const leaving = firstCall('alice leaving()', (cb) => aliceRoom.leaving(cb));
    const added = firstCall('member_added under Echo', (cb) => aliceRoom.subscription.bind('pusher:member_added', cb));
    assert.deepEqual((await aliceHere)[0], [{ name: 'Alice' }]);

    const bob = await echoFor({ id: 2, info: { name: 'Bob' } });
    const bobRoom = bob.join(room);
    const bobHere = firstCall('bob here()', (cb) => bobRoom.here(cb));
    const bobSees = (await bobHere)[0].map((m) => m.name).sort();
    assert.deepEqual(bobSees, ['Alice', 'Bob']);
    assert.deepEqual((await joining)[0], { name: 'Bob' });
    assert.deepEqual((await added)[0], { id: 2, info: { name: 'Bob' } }, 'the id as the auth endpoint wrote it');

    bob.leave(room);
    assert.deepEqual((await leaving)[0], { name: 'Bob' });
  });

  it('whisper / listenForWhisper (client events)', { timeout: T.test }, async () => {
    const name = unique('typing-');
    const alice = await echoFor({ id: 1 });
    const bob = await echoFor({ id: 2 });
    const a = alice.private(name);
    const b = bob.private(name);
    await Promise.all([echoSubscribed('alice subscribed', a), echoSubscribed('bob subscribed', b)]);
    const heard = firstCall('whisper typing', (cb) => a.listenForWhisper('typing', cb));
    b.whisper('typing', { name: 'Bob' });
    assert.deepEqual((await heard)[0], { name: 'Bob' });
  });
});
