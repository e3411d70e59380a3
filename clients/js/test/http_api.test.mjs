// Pusher HTTP API through the SDK: trigger, triggerBatch, channel queries;
// and request signing checked with hand-made requests.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { APP, T, handSignedUrl, nextEvent, serverForSuite, setup, subscribe, unique } from './support.mjs';

async function json(res) {
  assert.equal(res.status, 200);
  return res.json();
}

async function rejectsWithStatus(promise, status) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, status, `expected HTTP ${status}, got ${e.status}: ${e.body ?? e.message}`);
    return true;
  });
}

describe('HTTP API', () => {
  let h;
  const pub = unique('api-public-');
  const room = unique('presence-api-');
  const never = unique('api-never-');
  let alice1;
  let bob;

  before(async () => {
    h = await setup();
    // alice: two connections in the presence room, one also in the public channel.
    // bob: one connection in both.
    alice1 = await h.connectedClient({ user: { id: 'alice', info: { name: 'Alice' } } });
    const alice2 = await h.connectedClient({ user: { id: 'alice', info: { name: 'Alice' } } });
    bob = await h.connectedClient({ user: { id: 'bob', info: { name: 'Bob' } } });
    await Promise.all([subscribe(alice1, room), subscribe(alice2, room), subscribe(bob, room), subscribe(alice1, pub), subscribe(bob, pub)]);
  }, { timeout: T.hook });
  after(async () => {
    await h?.close();
  }, { timeout: T.hook });

  it('trigger answers 200 with a JSON object', { timeout: T.test }, async () => {
    const body = await json(await h.sdk.trigger(pub, 'ping', { n: 1 }));
    assert.equal(typeof body, 'object');
  });

  it('trigger to several channels at once', { timeout: T.test }, async () => {
    const got = [nextEvent(alice1.channel(pub), 'multi'), nextEvent(bob.channel(room), 'multi')];
    await json(await h.sdk.trigger([pub, room], 'multi', { both: true }));
    for (const { data } of await Promise.all(got)) assert.deepEqual(data, { both: true });
  });

  it('trigger with info returns subscription_count / user_count', { timeout: T.test }, async () => {
    const a = await json(await h.sdk.trigger(pub, 'counted', {}, { info: 'subscription_count' }));
    assert.equal(a.channels?.[pub]?.subscription_count, 2, JSON.stringify(a));
    const b = await json(await h.sdk.trigger(room, 'counted', {}, { info: 'user_count' }));
    assert.equal(b.channels?.[room]?.user_count, 2, JSON.stringify(b));
  });

  it('triggerBatch delivers every event', { timeout: T.test }, async () => {
    const got = [nextEvent(alice1.channel(pub), 'batch-1'), nextEvent(bob.channel(room), 'batch-2')];
    await json(
      await h.sdk.triggerBatch([
        { channel: pub, name: 'batch-1', data: { i: 1 } },
        { channel: room, name: 'batch-2', data: { i: 2 } },
      ]),
    );
    const [one, two] = await Promise.all(got);
    assert.deepEqual(one.data, { i: 1 });
    assert.deepEqual(two.data, { i: 2 });
  });

  it('GET /channels lists occupied channels only', { timeout: T.test }, async () => {
    const body = await json(await h.sdk.get({ path: '/channels' }));
    assert.ok(body.channels[pub], `missing ${pub}: ${JSON.stringify(body)}`);
    assert.ok(body.channels[room], `missing ${room}: ${JSON.stringify(body)}`);
    assert.equal(body.channels[never], undefined);
  });

  it('GET /channels?filter_by_prefix=presence-&info=user_count', { timeout: T.test }, async () => {
    const body = await json(await h.sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
    assert.equal(body.channels[room]?.user_count, 2, JSON.stringify(body));
    assert.equal(body.channels[pub], undefined, 'filter_by_prefix ignored');
  });

  it('GET /channels?info=user_count without a presence- filter is 400', { timeout: T.test }, async () => {
    await rejectsWithStatus(h.sdk.get({ path: '/channels', params: { info: 'user_count' } }), 400);
  });

  it('GET /channels/{public}?info=subscription_count', { timeout: T.test }, async () => {
    const body = await json(await h.sdk.get({ path: `/channels/${pub}`, params: { info: 'subscription_count' } }));
    assert.equal(body.occupied, true);
    assert.equal(body.subscription_count, 2);
  });

  it('GET /channels/{presence}?info=user_count,subscription_count', { timeout: T.test }, async () => {
    const body = await json(await h.sdk.get({ path: `/channels/${room}`, params: { info: 'user_count,subscription_count' } }));
    assert.equal(body.occupied, true);
    assert.equal(body.user_count, 2, 'users are counted once however many connections they have');
    assert.equal(body.subscription_count, 3);
  });

  it('GET /channels/{unused} is not occupied', { timeout: T.test }, async () => {
    const body = await json(await h.sdk.get({ path: `/channels/${never}` }));
    assert.equal(body.occupied, false);
  });

  it('GET /channels/{public}?info=user_count is 400', { timeout: T.test }, async () => {
    await rejectsWithStatus(h.sdk.get({ path: `/channels/${pub}`, params: { info: 'user_count' } }), 400);
  });

  it('GET /channels/{presence}/users lists each user once', { timeout: T.test }, async () => {
    const body = await json(await h.sdk.get({ path: `/channels/${room}/users` }));
    assert.deepEqual(body.users.map((u) => u.id).sort(), ['alice', 'bob']);
  });

  it('GET /channels/{public}/users is 400', { timeout: T.test }, async () => {
    await rejectsWithStatus(h.sdk.get({ path: `/channels/${pub}/users` }), 400);
  });

  describe('request signing (hand-made requests)', () => {
    const body = () => JSON.stringify({ name: 'signed', channels: [pub], data: '{"x":1}' });
    const post = (url, text) =>
      fetch(url, { method: 'POST', body: text, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(T.event) });

    it('a correctly signed request is accepted (control)', { timeout: T.test }, async () => {
      const text = body();
      const url = handSignedUrl(h.server, { method: 'POST', path: `/apps/${h.app.id}/events`, body: text });
      const res = await post(url, text);
      assert.equal(res.status, 200, await res.text());
    });

    it('a signature made with the wrong secret is 401', { timeout: T.test }, async () => {
      const text = body();
      const url = handSignedUrl(h.server, { method: 'POST', path: `/apps/${h.app.id}/events`, body: text, secret: 'not-the-secret' });
      const res = await post(url, text);
      assert.equal(res.status, 401, await res.text());
    });

    it('a timestamp 700 s old is 401', { timeout: T.test }, async () => {
      const text = body();
      const url = handSignedUrl(h.server, {
        method: 'POST',
        path: `/apps/${h.app.id}/events`,
        body: text,
        timestamp: Math.floor(Date.now() / 1000) - 700,
      });
      const res = await post(url, text);
      assert.equal(res.status, 401, await res.text());
    });

    it('a body changed after signing (body_md5 mismatch) is 401', { timeout: T.test }, async () => {
      const url = handSignedUrl(h.server, { method: 'POST', path: `/apps/${h.app.id}/events`, body: body() });
      const res = await post(url, JSON.stringify({ name: 'tampered', channels: [pub], data: '{"x":2}' }));
      assert.equal(res.status, 401, await res.text());
    });

    it('a signed GET with the wrong secret is 401', { timeout: T.test }, async () => {
      const url = handSignedUrl(h.server, { method: 'GET', path: `/apps/${h.app.id}/channels`, secret: 'not-the-secret' });
      const res = await fetch(url, { signal: AbortSignal.timeout(T.event) });
      assert.equal(res.status, 401, await res.text());
    });
  });
});

/** The suite's app with these limits added (the env vars give it its credentials). */
function appWith(limits) {
  return `[[pusher.apps]]\nid = "${APP.id}"\nkey = "${APP.key}"\nsecret = "${APP.secret}"\n${limits}\n`;
}

describe('HTTP API rate limits of the app', () => {
  const h = serverForSuite({ configToml: appWith('max_backend_events_per_second = 2\nmax_read_requests_per_second = 1') });

  it('events over max_backend_events_per_second: the SDK sees 429', { timeout: T.test }, async () => {
    const [a, b] = [unique('rate-a-'), unique('rate-b-')];
    await json(await h.sdk.trigger([a, b], 'e', { n: 1 }));
    await rejectsWithStatus(h.sdk.trigger(a, 'e', { n: 2 }), 429);
    await rejectsWithStatus(h.sdk.trigger([a, b, unique('rate-c-')], 'e', { n: 3 }), 429);
  });

  it('reads over max_read_requests_per_second: the SDK sees 429', { timeout: T.test }, async () => {
    await json(await h.sdk.get({ path: '/channels' }));
    await rejectsWithStatus(h.sdk.get({ path: '/channels' }), 429);
  });
});

describe('client event rate of the app', () => {
  const h = serverForSuite({ configToml: appWith('client_events = true\nmax_client_events_per_second = 2') });

  it('over max_client_events_per_second: pusher:error 4301 for pusher-js, socket open', { timeout: T.test }, async () => {
    const name = unique('private-rate-');
    const a = await h.connectedClient({ user: { id: 1 } });
    const b = await h.connectedClient({ user: { id: 2 } });
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const first = nextEvent(cb, 'client-n', { filter: (d) => d.i === 0 });
    for (let i = 0; i < 6; i++) ca.trigger('client-n', { i });
    await a.errors.waitFor('pusher:error 4301', (e) => e.data?.code === 4301, { timeout: T.event });
    await first;
    assert.equal(a.connection.state, 'connected');
  });
});
