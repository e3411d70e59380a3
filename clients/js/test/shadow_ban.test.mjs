// Shadow-bans and kicks of one connection as pusher-js sees them: a
// shadow-banned user's client events reach its own other connections and
// nobody else, with no error to the sender, while it still hears the room;
// a kick of one socket_id closes that connection with 4100 (pusher-js
// reconnects by itself) and leaves the user's other connection open.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { API_KEY, T, fence, framesOf, leftConnected, marker, moderate, nextEvent, serverForSuite, subscribe, unique } from './support.mjs';

describe('shadow-bans and kicks of one connection (pusher-js)', () => {
  const h = serverForSuite({ clientEvents: true });

  it("a shadow-banned user's client events reach only its own other connections", { timeout: T.test }, async () => {
    const name = unique('presence-shadow-');
    const tab = await h.connectedClient({ user: { id: 'troll', info: {} } });
    const otherTab = await h.connectedClient({ user: { id: 'troll', info: {} } });
    const bystander = await h.connectedClient({ user: { id: 'calm', info: {} } });
    const [{ channel: ct }, { channel: co }, { channel: cb }] = await Promise.all([
      subscribe(tab, name), subscribe(otherTab, name), subscribe(bystander, name),
    ]);
    const shadow = await moderate(h, { action: 'shadow_ban', user: 'troll', channel: name, reason: 'spam' });
    assert.equal(shadow.sanction.kind, 'shadow_ban');
    assert.equal(shadow.closed, undefined, 'a shadow-ban closes nothing');

    const errorsBefore = tab.errors.length;
    const own = nextEvent(co, 'client-said');
    ct.trigger('client-said', { text: 'hidden' });
    assert.deepEqual((await own).data, { text: 'hidden' }, "the user's other tab gets it");
    const heard = nextEvent(ct, 'client-said');
    cb.trigger('client-said', { text: 'from calm' });
    assert.deepEqual((await heard).data, { text: 'from calm' }, 'the shadow-banned user hears the room');
    await fence(tab);
    await marker(h, name, [tab, otherTab, bystander]);
    assert.equal(framesOf(bystander, name, 'client-said').length, 0, 'the bystander got the shadowed event');
    assert.equal(tab.errors.length, errorsBefore, 'no error tells the sender');

    const listed = await fetch(`${h.server.httpUrl}/api/moderation/sanctions?channel=${name}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    }).then((r) => r.json());
    assert.deepEqual(listed.sanctions.map((s) => [s.kind, s.user]), [['shadow_ban', 'troll']]);

    assert.equal((await moderate(h, { action: 'unshadow_ban', user: 'troll', channel: name })).lifted, true);
    const visible = nextEvent(cb, 'client-said');
    ct.trigger('client-said', { text: 'visible' });
    assert.deepEqual((await visible).data, { text: 'visible' }, 'lifted: everyone hears it again');
  });

  it("a kick of one socket_id closes that connection with 4100 and leaves the user's other one", { timeout: T.test }, async () => {
    const name = unique('presence-kick-');
    const tab = await h.connectedClient({ user: { id: 'twice', info: {} } });
    const otherTab = await h.connectedClient({ user: { id: 'twice', info: {} } });
    await Promise.all([subscribe(tab, name), subscribe(otherTab, name)]);
    const socketId = tab.connection.socket_id;
    const statesBefore = tab.states.length;
    const otherStatesBefore = otherTab.states.length;
    const kicked = await moderate(h, { action: 'kick', connection: socketId, channel: name });
    assert.equal(kicked.closed, 1, JSON.stringify(kicked));
    await leftConnected(tab, { from: statesBefore });
    await tab.states.waitFor('connected again', (s) => s.current === 'connected', { from: statesBefore, timeout: T.connect + T.event });
    assert.notEqual(tab.connection.socket_id, socketId, 'a new connection');
    await fence(otherTab);
    assert.equal(otherTab.states.length, otherStatesBefore, 'the other connection never changed state');
    assert.equal(otherTab.connection.state, 'connected');
    const again = await moderate(h, { action: 'kick', connection: socketId, channel: name });
    assert.equal(again.closed, 0, 'that connection is gone');
  });
});
