// Public channels with the real pusher-js client and the `pusher` SDK.
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

describe('public channels', () => {
  const h = serverForSuite();

  it('pusher-js connects and gets a socket id the SDK accepts', { timeout: T.test }, async () => {
    const p = await h.connectedClient();
    assert.match(p.connection.socket_id, /^\d+\.\d+$/);
  });

  it('delivers an SDK trigger to a subscriber', { timeout: T.test }, async () => {
    const p = await h.connectedClient();
    const name = unique('news-');
    const { channel } = await subscribe(p, name);
    const got = nextEvent(channel, 'breaking');
    const res = await h.sdk.trigger(name, 'breaking', { headline: 'hello', n: 1 });
    assert.equal(res.status, 200);
    const { data } = await got;
    assert.deepEqual(data, { headline: 'hello', n: 1 });
  });

  it('delivers to every subscriber and skips the socket_id excluded by the trigger', { timeout: T.test }, async () => {
    const a = await h.connectedClient();
    const b = await h.connectedClient();
    const name = unique('room-');
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const both = [nextEvent(ca, 'all'), nextEvent(cb, 'all')];
    await h.sdk.trigger(name, 'all', 'plain string');
    for (const { data } of await Promise.all(both)) assert.equal(data, 'plain string');

    const toB = nextEvent(cb, 'not-a');
    await h.sdk.trigger(name, 'not-a', { x: 1 }, { socket_id: a.connection.socket_id });
    assert.deepEqual((await toB).data, { x: 1 });
    await marker(h, name, [a, b]);
    assert.equal(framesOf(a, name, 'not-a').length, 0, 'the excluded socket received the event');
  });

  it('stops delivering after unsubscribe', { timeout: T.test }, async () => {
    const p = await h.connectedClient();
    const gone = unique('gone-');
    const kept = unique('kept-');
    await subscribe(p, gone);
    await subscribe(p, kept);
    p.unsubscribe(gone);
    await fence(p);
    await h.sdk.trigger(gone, 'late', {});
    await marker(h, kept, [p]);
    assert.equal(framesOf(p, gone, 'late').length, 0);
  });
});
