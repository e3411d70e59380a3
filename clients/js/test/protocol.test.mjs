// Wire-level checks of what pusher-js relies on, with a raw WebSocket.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, serverForSuite, unique, waitFor } from './support.mjs';

describe('pusher protocol on the wire', () => {
  const h = serverForSuite();

  it('connection_established: string-encoded data with socket_id and activity_timeout', { timeout: T.test }, async () => {
    const r = await h.raw();
    const est = r.messages.find((m) => m.event === 'pusher:connection_established');
    assert.equal(typeof est.dataRaw, 'string', 'data must be a JSON-encoded string');
    assert.match(est.data.socket_id, /^\d+\.\d+$/);
    assert.equal(typeof est.data.activity_timeout, 'number');
    assert.ok(est.data.activity_timeout > 0, 'pusher-js throws without an activity_timeout');
  });

  it('answers pusher:ping with pusher:pong', { timeout: T.test }, async () => {
    const r = await h.raw();
    r.send('pusher:ping', {});
    await r.waitMessage('pusher:pong', (m) => m.event === 'pusher:pong');
  });

  it('public subscribe gets pusher_internal:subscription_succeeded, then string-encoded events', { timeout: T.test }, async () => {
    const r = await h.raw();
    const name = unique('wire-');
    r.send('pusher:subscribe', { channel: name, auth: '' });
    await r.waitMessage('subscription_succeeded', (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === name);
    await h.sdk.trigger(name, 'ev', { a: 1 });
    const ev = await r.waitMessage('ev', (m) => m.event === 'ev' && m.channel === name);
    assert.equal(typeof ev.dataRaw, 'string');
    assert.deepEqual(ev.data, { a: 1 });
    assert.equal(ev.binary, false, 'events must be text frames');
  });

  it('presence subscription_succeeded carries {presence: {ids, hash, count}}', { timeout: T.test }, async () => {
    const r = await h.raw();
    const name = unique('presence-wire-');
    const auth = h.sdk.authorizeChannel(r.socketId, name, { user_id: 'u1', user_info: { name: 'U' } });
    r.send('pusher:subscribe', { channel: name, auth: auth.auth, channel_data: auth.channel_data });
    const ok = await r.waitMessage('subscription_succeeded', (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === name);
    assert.deepEqual(ok.data.presence, { ids: ['u1'], hash: { u1: { name: 'U' } }, count: 1 });
  });

  it('refuses a forged private subscription out loud (pusher:subscription_error)', { timeout: T.test }, async () => {
    const r = await h.raw();
    const name = unique('private-wire-');
    r.send('pusher:subscribe', { channel: name, auth: `${h.app.key}:${'0'.repeat(64)}` });
    const err = await r.waitMessage('subscription_error', (m) => m.event === 'pusher:subscription_error' && m.channel === name);
    assert.ok(err.data, 'subscription_error must carry data');
  });

  it('accepts a private subscription signed over socket_id:channel:channel_data', { timeout: T.test }, async () => {
    // pusher-js's own integration tests do this whenever the auth response has channel_data.
    const r = await h.raw();
    const name = unique('private-cd-');
    const auth = h.sdk.authorizeChannel(r.socketId, name, { user_id: 'u1' });
    r.send('pusher:subscribe', { channel: name, auth: auth.auth, channel_data: auth.channel_data });
    await r.waitMessage('subscription_succeeded', (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === name);
  });

  it('closes an unknown app key with 4001', { timeout: T.test }, async () => {
    const r = await h.raw({ key: 'no-such-key', waitEstablished: false });
    const { code } = await waitFor(() => `close; frames ${JSON.stringify(r.messages.map((m) => m.text))}`, T.event, (resolve) => {
      r.closed.then(resolve);
    });
    assert.equal(code, 4001);
    assert.ok(!r.messages.some((m) => m.event === 'pusher:connection_established'));
  });
});
