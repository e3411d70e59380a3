// Content rules on client events (docs/moderation.md): a blocked word is
// masked before the other subscribers get it; a refused event (here: a link
// where links are rejected) is pusher:error 4303 to the sender, delivered to
// no one, and the connection stays open.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, fence, framesOf, marker, nextEvent, serverForSuite, subscribe, unique } from './support.mjs';

const CONTENT = `
[channel_defaults.content]
blocklist = ["darn"]
blocklist_action = "mask"
links = "reject"
`;

describe('content rules on client events', () => {
  const h = serverForSuite({ clientEvents: true, configToml: CONTENT });

  it('a blocked word reaches the other subscriber masked', { timeout: T.test }, async () => {
    const name = unique('private-masked-');
    const a = await h.connectedClient({ user: { id: 'alice' } });
    const b = await h.connectedClient({ user: { id: 'bob' } });
    const [{ channel: ca }, { channel: cb }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const got = nextEvent(cb, 'client-message');
    assert.equal(ca.trigger('client-message', { text: 'Darn it, darnation', n: 1 }), true);
    assert.deepEqual((await got).data, { text: '**** it, darnation', n: 1 });
  });

  it('a refused event is pusher:error 4303, delivered to no one, and the socket stays open', { timeout: T.test }, async () => {
    const name = unique('private-refused-');
    const a = await h.connectedClient({ user: { id: 'alice' } });
    const b = await h.connectedClient({ user: { id: 'bob' } });
    const [{ channel: ca }] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const statesBefore = a.states.length;
    const errorsBefore = a.errors.length;
    ca.trigger('client-message', { text: 'win at https://casino.example.com/now' });
    const error = await a.errors.waitFor(
      () => `pusher:error 4303 (errors: ${JSON.stringify(a.errors.map((e) => e.data ?? e))})`,
      (e) => e.type === 'PusherError' && e.data?.code === 4303,
      { from: errorsBefore, timeout: T.event },
    );
    assert.equal(error.data.message, 'links are not allowed in this channel: "https://casino.example.com/now"');
    await fence(a);
    await marker(h, name, [a, b]);
    assert.equal(framesOf(b, name, 'client-message').length, 0, 'the refused event was delivered');
    assert.equal(a.connection.state, 'connected');
    assert.equal(a.states.length, statesBefore, 'the sender was disconnected');
  });
});
