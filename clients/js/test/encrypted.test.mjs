// private-encrypted-: the SDK encrypts with the master key, the auth
// endpoint hands pusher-js the per-channel shared_secret, and the server only
// forwards {"nonce","ciphertext"}.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, nextEvent, serverForSuite, subscribe, unique } from './support.mjs';

describe('encrypted channels', () => {
  const h = serverForSuite();

  it('pusher-js decrypts what the SDK encrypted; the wire carries only nonce and ciphertext', { timeout: T.test }, async () => {
    const name = unique('private-encrypted-vault-');
    const p = await h.connectedClient({ user: { id: 'u1' } });
    const { channel } = await subscribe(p, name);

    // A raw observer on the same channel, to see what the server forwards.
    const r = await h.raw();
    const auth = h.sdk.authorizeChannel(r.socketId, name);
    assert.ok(auth.shared_secret, 'the SDK adds shared_secret for encrypted channels');
    r.send('pusher:subscribe', { channel: name, auth: auth.auth });
    await r.waitMessage('subscription_succeeded', (m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === name);

    const got = nextEvent(channel, 'secret');
    await h.sdk.trigger(name, 'secret', { msg: 'top secret', n: 42 });
    assert.deepEqual((await got).data, { msg: 'top secret', n: 42 });

    const frame = await r.waitMessage('secret', (m) => m.event === 'secret' && m.channel === name);
    assert.equal(typeof frame.dataRaw, 'string');
    assert.deepEqual(Object.keys(frame.data).sort(), ['ciphertext', 'nonce']);
    assert.equal(Buffer.from(frame.data.nonce, 'base64').length, 24);
    assert.ok(!frame.text.includes('top secret'), 'plaintext on the wire');
  });
});
