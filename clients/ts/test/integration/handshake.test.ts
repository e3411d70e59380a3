// A handshake the server refuses with an HTTP answer (§2.1): the client
// waits at least its Retry-After before the next attempt (Node with `ws`).

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { clientOf, closeClients, nextEvent, startServer, T, type Server } from './server.js';

let server: Server;
beforeAll(async () => {
  server = await startServer({ extraToml: '\n[limits]\nmax_connections_per_ip = 1\n' });
}, T.start);
afterAll(() => server?.stop());
afterEach(closeClients);

describe('refused handshakes', { timeout: T.test }, () => {
  it("waits at least the 429's Retry-After before trying again", async () => {
    const holder = clientOf(server);
    await holder.connect();
    const refused = clientOf(server);
    const dropped = nextEvent(refused, 'disconnected');
    void refused.connect();
    const drop = await dropped;
    // too_many_connections: retry_after_ms 5000, Retry-After: 5; the backoff alone is at most 100 ms here.
    expect(drop.code).toBe(1006);
    expect(drop.delayMs).toBeGreaterThanOrEqual(5000);
    refused.close();
  });
});
