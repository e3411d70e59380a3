// Admission limits as pusher-js meets them: an HTTP 429 on the upgrade is a
// failed connection it retries by itself (it cannot read Retry-After), and
// a user over `limits.max_connections_per_user` is closed with 4004, which
// pusher-js takes as "refused" and does not retry.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, connected, serverForSuite } from './support.mjs';

/** `fanfare_handshake_failures_total{cause}` on the server, 0 when never counted. */
async function handshakeFailures(h, cause) {
  const text = await (await fetch(`${h.server.httpUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`fanfare_handshake_failures_total{cause="${cause}"} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Resolves once `check()` holds, polling; rejects after `timeout` ms. */
async function until(label, timeout, check) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('connections per IP', () => {
  const h = serverForSuite({ env: { FANFARE_LIMITS_MAX_CONNECTIONS_PER_IP: '2' } });

  // pusher-js retries a failed WebSocket after its strategy's timeout: 15 s,
  // then 30 s, then 60 s (`SequentialStrategy`, `timeouts` of the default
  // strategy).
  it('a third connection from one address is refused until one of the first two closes', { timeout: T.test * 2 }, async () => {
    const first = await h.connectedClient();
    await h.connectedClient();
    const third = h.client();
    // Refused at the upgrade (HTTP 429): pusher-js sees the WebSocket fail
    // and tries again by itself.
    await until('a refused upgrade', T.connect, async () => (await handshakeFailures(h, 'connections_per_ip')) >= 1);
    assert.notEqual(third.connection.state, 'connected');

    first.disconnect();
    await connected(third, 20_000 + T.connect);
    assert.equal(third.connection.state, 'connected');
  });
});

describe('connections per user', () => {
  const h = serverForSuite({ env: { FANFARE_LIMITS_MAX_CONNECTIONS_PER_USER: '1' } });

  it('a second signin as the same user gets pusher:error 4004, is closed with 4004 and stays closed', { timeout: T.test }, async () => {
    const alice = await h.connectedClient({ user: { id: 'alice' } });
    alice.signin();
    await alice.user.signinDonePromise;
    assert.ok(alice.user.user_data, 'the first signin succeeds');

    const again = await h.connectedClient({ user: { id: 'alice' } });
    again.signin();
    const error = await again.errors.waitFor('pusher:error 4004', (e) => e.data?.code === 4004, { timeout: T.event });
    assert.match(error.data.message, /most connections/);
    await again.states.waitFor('disconnected after 4004', (s) => s.current === 'disconnected', { timeout: T.event });

    const bob = await h.connectedClient({ user: { id: 'bob' } });
    bob.signin();
    await bob.user.signinDonePromise;
    assert.ok(bob.user.user_data, 'another user is not limited by alice');
    assert.equal(alice.connection.state, 'connected');
  });
});
