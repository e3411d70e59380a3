// Webhooks: received by a local receiver and verified with the SDK's own
// pusher.webhook({headers, rawBody}).isValid(). channel_vacated and
// member_removed are held 3 s by the server, so their waits are T.held.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { PusherServer, T, fence, serverForSuite, subscribe, unique } from './support.mjs';

const EVENTS = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss'];
const HOLD_MS = 3000;

const asObject = (d) => (typeof d === 'string' ? JSON.parse(d) : d);

describe('webhooks', () => {
  const h = serverForSuite({ withWebhooks: EVENTS, clientEvents: true });

  const is = (name, channel, extra = () => true) => (e) => e.name === name && e.channel === channel && extra(e);
  const count = (name, channel, extra = () => true) => h.hooks.events.filter(is(name, channel, extra)).length;

  it('channel_occupied on the first subscriber, with a valid signature and pusher headers', { timeout: T.test }, async () => {
    const name = unique('wh-public-');
    const p = await h.connectedClient();
    await subscribe(p, name);
    const e = await h.hooks.waitEvent(`channel_occupied ${name}`, is('channel_occupied', name));
    assert.equal(e.hook.method, 'POST');
    assert.equal(e.hook.headers['x-pusher-key'], h.app.key);
    assert.match(e.hook.headers['x-pusher-signature'], /^[0-9a-f]{64}$/);
    assert.equal(e.hook.headers['content-type'], 'application/json', 'pusher-http-node only accepts exactly application/json');
    assert.equal(typeof e.hook.body.time_ms, 'number');
    assert.equal(typeof e.id, 'string');
    assert.ok(e.id.length > 0);
  });

  it('channel_vacated after the last subscriber leaves, held ~3 s', { timeout: T.test }, async () => {
    const name = unique('wh-vacate-');
    const a = await h.connectedClient();
    const b = await h.connectedClient();
    await Promise.all([subscribe(a, name), subscribe(b, name)]);
    await h.hooks.waitEvent(`channel_occupied ${name}`, is('channel_occupied', name));
    a.unsubscribe(name);
    await fence(a);
    const left = Date.now();
    b.disconnect();
    await h.hooks.waitEvent(`channel_vacated ${name}`, is('channel_vacated', name));
    const waited = Date.now() - left;
    assert.ok(waited >= HOLD_MS - 500, `channel_vacated after ${waited} ms, expected the ${HOLD_MS} ms hold`);
    assert.equal(count('channel_occupied', name), 1);
    assert.equal(count('channel_vacated', name), 1);
  });

  it('member_added once per user, member_removed when the last connection leaves', { timeout: T.test }, async () => {
    const room = unique('presence-wh-');
    const alice = { user: { id: 'alice', info: { name: 'Alice' } } };
    const a1 = await h.connectedClient(alice);
    const a2 = await h.connectedClient(alice);
    await subscribe(a1, room);
    await h.hooks.waitEvent('member_added alice', is('member_added', room, (e) => e.user_id === 'alice'));
    await subscribe(a2, room);
    const bob = await h.connectedClient({ user: { id: 'bob', info: {} } });
    await subscribe(bob, room);
    await h.hooks.waitEvent('member_added bob', is('member_added', room, (e) => e.user_id === 'bob'));
    assert.equal(count('member_added', room, (e) => e.user_id === 'alice'), 1, 'member_added for alice twice');

    a1.disconnect();
    a2.disconnect();
    await h.hooks.waitEvent('member_removed alice', is('member_removed', room, (e) => e.user_id === 'alice'));
    assert.equal(count('member_removed', room, (e) => e.user_id === 'bob'), 0);
  });

  it('a member or channel coming back within the hold sends no member_removed / channel_vacated', { timeout: T.test }, async () => {
    const room = unique('presence-flap-');
    const x = unique('wh-flap-');
    const y = unique('wh-marker-');
    const carol = await h.connectedClient({ user: { id: 'carol', info: {} } });
    const dave = await h.connectedClient({ user: { id: 'dave', info: {} } });
    await Promise.all([subscribe(carol, room), subscribe(carol, x), subscribe(dave, room), subscribe(dave, y)]);
    await h.hooks.waitEvent('member_added dave', is('member_added', room, (e) => e.user_id === 'dave'));
    await h.hooks.waitEvent(`channel_occupied ${y}`, is('channel_occupied', y));

    // carol flaps: leaves and comes back at once (member and channel).
    carol.unsubscribe(room);
    carol.unsubscribe(x);
    await fence(carol);
    await Promise.all([subscribe(carol, room), subscribe(carol, x)]);
    // Markers due after carol's would have been: dave leaves room and y.
    dave.disconnect();
    await h.hooks.waitEvent('member_removed dave (marker)', is('member_removed', room, (e) => e.user_id === 'dave'));
    await h.hooks.waitEvent(`channel_vacated ${y} (marker)`, is('channel_vacated', y));
    assert.equal(count('member_removed', room, (e) => e.user_id === 'carol'), 0, 'member_removed sent for a member who came back');
    assert.equal(count('channel_vacated', x), 0, 'channel_vacated sent for a channel that was reoccupied');
  });

  it('client_event with event, data, socket_id (and user_id on presence)', { timeout: T.test }, async () => {
    const priv = unique('private-wh-');
    const room = unique('presence-wh-ce-');
    const a = await h.connectedClient({ user: { id: 'alice', info: {} } });
    const b = await h.connectedClient({ user: { id: 'bob', info: {} } });
    const [{ channel: pa }, , { channel: ra }] = await Promise.all([subscribe(a, priv), subscribe(b, priv), subscribe(a, room), subscribe(b, room)]);

    pa.trigger('client-wh', { x: 1 });
    const e1 = await h.hooks.waitEvent(`client_event on ${priv}`, is('client_event', priv));
    assert.equal(e1.event, 'client-wh');
    assert.deepEqual(asObject(e1.data), { x: 1 });
    assert.equal(e1.socket_id, a.connection.socket_id);
    assert.equal(e1.user_id, undefined);

    ra.trigger('client-wh-presence', { y: 2 });
    const e2 = await h.hooks.waitEvent(`client_event on ${room}`, is('client_event', room));
    assert.equal(e2.event, 'client-wh-presence');
    assert.deepEqual(asObject(e2.data), { y: 2 });
    assert.equal(e2.socket_id, a.connection.socket_id);
    assert.equal(e2.user_id, 'alice');
  });

  it('cache_miss when subscribing to an empty cache channel', { timeout: T.test }, async () => {
    const name = unique('cache-wh-');
    const p = await h.connectedClient();
    await subscribe(p, name);
    await h.hooks.waitEvent(`cache_miss ${name}`, is('cache_miss', name));
  });

  it('every webhook request so far verified, and the verifier does reject a wrong secret', { timeout: T.test }, async () => {
    assert.ok(h.hooks.hooks.length > 0, 'no webhook received at all');
    const invalid = h.hooks.hooks.filter((x) => !x.valid);
    assert.deepEqual(invalid.map((x) => ({ headers: x.headers, body: x.rawBody })), [], 'webhooks failing pusher.webhook().isValid()');
    const ids = h.hooks.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'webhook event ids are not unique');
    const wrong = new PusherServer({ appId: h.app.id, key: h.app.key, secret: 'wrong-secret' });
    const sample = h.hooks.hooks[0];
    assert.equal(wrong.webhook({ headers: sample.headers, rawBody: sample.rawBody }).isValid(), false);
  });
});
