// Presence: two users, alice with two connections. member_added only on a
// user's first connection, member_removed only when the last one leaves.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, fence, framesOf, marker, nextEvent, serverForSuite, subscribe, unique } from './support.mjs';

const ALICE = { id: 'alice', info: { name: 'Alice' } };
const BOB = { id: 'bob', info: { name: 'Bob' } };

describe('presence channels', () => {
  const h = serverForSuite();

  it('tracks members by user, not by connection', { timeout: T.test }, async () => {
    const room = unique('presence-room-');

    const bob = await h.connectedClient({ user: BOB });
    const { channel: bobCh } = await subscribe(bob, room);
    assert.equal(bobCh.members.count, 1);
    assert.deepEqual(bobCh.members.me, { id: 'bob', info: { name: 'Bob' } });
    const added = [];
    const removed = [];
    bobCh.bind('pusher:member_added', (m) => added.push(m));
    bobCh.bind('pusher:member_removed', (m) => removed.push(m));

    // alice's first connection: bob sees member_added once.
    const a1 = await h.connectedClient({ user: ALICE });
    const firstAdd = nextEvent(bobCh, 'pusher:member_added');
    const { channel: a1Ch } = await subscribe(a1, room);
    assert.equal(a1Ch.members.count, 2);
    assert.deepEqual(a1Ch.members.me, { id: 'alice', info: { name: 'Alice' } });
    assert.deepEqual(a1Ch.members.get('bob'), { id: 'bob', info: { name: 'Bob' } });
    assert.deepEqual((await firstAdd).data, { id: 'alice', info: { name: 'Alice' } });
    assert.equal(bobCh.members.count, 2);

    // alice's second connection: still two members, no second member_added.
    const a2 = await h.connectedClient({ user: ALICE });
    const { channel: a2Ch } = await subscribe(a2, room);
    assert.equal(a2Ch.members.count, 2);
    assert.deepEqual(Object.keys(a2Ch.members.members).sort(), ['alice', 'bob']);
    assert.equal(a2Ch.members.me.id, 'alice');
    await marker(h, room, [bob, a1, a2]);
    assert.equal(added.length, 1, `member_added fired ${added.length} times`);

    // alice leaves on one connection: no member_removed.
    a1.unsubscribe(room);
    await fence(a1);
    await marker(h, room, [bob, a2]);
    assert.equal(removed.length, 0, 'member_removed while alice still had a connection');
    assert.equal(bobCh.members.count, 2);

    // alice's last connection goes away: member_removed, once.
    const gone = nextEvent(bobCh, 'pusher:member_removed');
    a2.disconnect();
    assert.deepEqual((await gone).data, { id: 'alice', info: { name: 'Alice' } });
    assert.equal(bobCh.members.count, 1);
    await marker(h, room, [bob]);
    assert.equal(removed.length, 1);
  });

  it('a member joining sees everyone already there with their user_info', { timeout: T.test }, async () => {
    const room = unique('presence-lobby-');
    const clients = [];
    for (const id of ['u1', 'u2', 'u3']) {
      const p = await h.connectedClient({ user: { id, info: { n: id } } });
      await subscribe(p, room);
      clients.push(p);
    }
    const last = await h.connectedClient({ user: { id: 'u4', info: { n: 'u4' } } });
    const { channel } = await subscribe(last, room);
    assert.equal(channel.members.count, 4);
    const seen = [];
    channel.members.each((m) => seen.push(m));
    seen.sort((x, y) => x.id.localeCompare(y.id));
    assert.deepEqual(seen, ['u1', 'u2', 'u3', 'u4'].map((id) => ({ id, info: { n: id } })));
  });

  it('integer user ids (Laravel) stay numbers; 2 and "2" are one member', { timeout: T.test }, async () => {
    const room = unique('presence-ints-');
    const one = await h.connectedClient({ user: { id: 1, info: { name: 'One' } } });
    const { channel: oneCh } = await subscribe(one, room);
    assert.deepEqual(oneCh.members.me, { id: 1, info: { name: 'One' } });

    const added = nextEvent(oneCh, 'pusher:member_added');
    const two = await h.connectedClient({ user: { id: 2, info: { name: 'Two' } } });
    const { channel: twoCh } = await subscribe(two, room);
    assert.deepEqual((await added).data, { id: 2, info: { name: 'Two' } });
    assert.deepEqual(twoCh.members.me, { id: 2, info: { name: 'Two' } });
    const succeeded = framesOf(two, room, 'pusher_internal:subscription_succeeded')[0];
    assert.deepEqual(succeeded.data.presence.ids.sort(), [1, 2], JSON.stringify(succeeded.data));
    assert.equal(succeeded.data.presence.count, 2);

    // The same user written as a string on another connection: no second member.
    const twoAgain = await h.connectedClient({ user: { id: '2', info: { name: 'Two' } } });
    const { channel: againCh } = await subscribe(twoAgain, room);
    assert.equal(againCh.members.count, 2);
    await marker(h, room, [one, two, twoAgain]);
    assert.equal(framesOf(one, room, 'pusher_internal:member_added').length, 1);
    assert.equal(oneCh.members.count, 2);

    // member_removed once the user's last connection leaves, with the number it used.
    twoAgain.unsubscribe(room);
    await fence(twoAgain);
    const removed = nextEvent(oneCh, 'pusher:member_removed');
    two.disconnect();
    assert.deepEqual((await removed).data, { id: 2, info: { name: 'Two' } });
    const frame = framesOf(one, room, 'pusher_internal:member_removed')[0];
    assert.equal(frame.data.user_id, 2, JSON.stringify(frame));
    assert.equal(oneCh.members.count, 1);
  });
});
