// One hub: a native client and a pusher-js client on the same channel see
// each other's messages.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, nativePublish, nextEvent, serverForSuite, subscribe, unique } from './support.mjs';

describe('one hub (native + Pusher)', () => {
  const h = serverForSuite();

  it('native side alone: HTTP publish reaches a native subscriber (harness check)', { timeout: T.test }, async () => {
    const name = unique('hub-native-');
    const native = await h.native();
    await native.command('subscribe', { channel: name });
    const res = await nativePublish(h.server, name, { text: 'native only' });
    const push = await native.waitPush('publication', (m) => m.type === 'publication' && m.channel === name);
    assert.deepEqual(push.data, { text: 'native only' });
    assert.equal(push.offset, res.offset);
  });

  it('native publish reaches pusher-js as event "publication"', { timeout: T.test }, async () => {
    const name = unique('hub-news-');
    const p = await h.connectedClient();
    const { channel } = await subscribe(p, name);
    const got = nextEvent(channel, 'publication');
    await nativePublish(h.server, name, { text: 'from native', n: [1, 2] });
    assert.deepEqual((await got).data, { text: 'from native', n: [1, 2] });
  });

  it('Pusher trigger reaches a native subscriber as a publication with event', { timeout: T.test }, async () => {
    const name = unique('hub-news-');
    const native = await h.native();
    await native.command('subscribe', { channel: name });
    const p = await h.connectedClient();
    const { channel } = await subscribe(p, name);
    const toPusher = nextEvent(channel, 'my-event');
    await h.sdk.trigger(name, 'my-event', { text: 'from pusher' });
    const push = await native.waitPush('publication with event', (m) => m.type === 'publication' && m.channel === name);
    assert.equal(push.event, 'my-event');
    assert.equal(typeof push.data, 'string', 'data is the Pusher event data string');
    assert.deepEqual(JSON.parse(push.data), { text: 'from pusher' });
    assert.deepEqual((await toPusher).data, { text: 'from pusher' });
  });
});
