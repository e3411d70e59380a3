// Cache channels: the last server-triggered event is replayed right after
// subscription_succeeded; an empty cache gives pusher:cache_miss.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, framesOf, receivedFrame, serverForSuite, subscribe, unique } from './support.mjs';

function firstAfterSucceeded(p, name) {
  const frames = p.received.filter((m) => m.channel === name);
  const i = frames.findIndex((m) => m.event === 'pusher_internal:subscription_succeeded');
  assert.ok(i >= 0, `no subscription_succeeded on ${name}`);
  return frames.slice(i + 1);
}

describe('cache channels', () => {
  const h = serverForSuite();

  it('miss: pusher:cache_miss follows subscription_succeeded', { timeout: T.test }, async () => {
    const name = unique('cache-empty-');
    const p = await h.connectedClient();
    const channel = p.subscribe(name);
    const misses = [];
    channel.bind('pusher:cache_miss', (d) => misses.push(d ?? null));
    await subscribe(p, name);
    await receivedFrame(p, (m) => m.event === 'pusher:cache_miss' && m.channel === name, { label: `pusher:cache_miss on ${name}` });
    assert.equal(firstAfterSucceeded(p, name)[0].event, 'pusher:cache_miss');
    assert.equal(misses.length, 1, 'pusher-js did not surface pusher:cache_miss on the channel');
  });

  it('miss on the wire: data is an empty object, as Pusher sends it', { timeout: T.test }, async () => {
    const name = unique('cache-raw-');
    const r = await h.raw();
    r.send('pusher:subscribe', { channel: name, auth: '' });
    const miss = await r.waitMessage('pusher:cache_miss', (m) => m.event === 'pusher:cache_miss' && m.channel === name);
    assert.deepEqual(miss.dataRaw, {}, `cache_miss frame: ${miss.text}`);
    assert.equal(miss.text, `{"event":"pusher:cache_miss","channel":"${name}","data":{}}`);
  });

  it('hit: the last triggered event is delivered first, with its channel', { timeout: T.test }, async () => {
    const name = unique('cache-price-');
    await h.sdk.trigger(name, 'price', { v: 1 });
    await h.sdk.trigger(name, 'price', { v: 2 });
    const p = await h.connectedClient();
    const channel = p.subscribe(name);
    const prices = [];
    channel.bind('price', (d) => prices.push(d));
    await subscribe(p, name);
    const cached = await receivedFrame(p, (m) => m.event === 'price' && m.channel === name, { label: `cached price on ${name}` });
    assert.deepEqual(cached.data, { v: 2 });
    const after = firstAfterSucceeded(p, name);
    assert.equal(after[0].event, 'price', `first event after subscription_succeeded was ${JSON.stringify(after[0])}`);
    assert.deepEqual(prices, [{ v: 2 }]);
    assert.equal(framesOf(p, name, 'pusher:cache_miss').length, 0);
  });

  it('hit on a private-cache- channel', { timeout: T.test }, async () => {
    const name = unique('private-cache-status-');
    await h.sdk.trigger(name, 'status', { up: true });
    const p = await h.connectedClient({ user: { id: 'u1' } });
    await subscribe(p, name);
    const cached = await receivedFrame(p, (m) => m.event === 'status' && m.channel === name, { label: `cached status on ${name}` });
    assert.deepEqual(cached.data, { up: true });
    assert.equal(firstAfterSucceeded(p, name)[0].event, 'status');
  });
});
