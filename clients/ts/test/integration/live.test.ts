// Connect, subscribe, publish (through the HTTP API and through a client),
// history and errors, against the real binary.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { ProtocolError, type Publication } from '../../src/index.js';
import {
  clientOf,
  closeClients,
  collect,
  nextEvent,
  publishHttp,
  startServer,
  T,
  tokenFor,
  type Server,
} from './server.js';

let server: Server;
beforeAll(async () => {
  server = await startServer();
}, T.start);
afterAll(() => server?.stop());
afterEach(closeClients);

describe('live', { timeout: T.test }, () => {
  it('connects with a token, subscribes, and receives what the HTTP API publishes, in order', async () => {
    const client = clientOf(server, { getToken: async () => tokenFor('alice') });
    const session = await client.connect();
    expect(session).toMatchObject({ user: 'alice', ping_interval_ms: 25000 });
    expect(session.client).toBeTypeOf('string');

    const sub = client.subscribe('news');
    const subscribed = await sub.ready;
    expect(subscribed).toMatchObject({ channel: 'news', offset: 0, resubscribed: false });
    expect(subscribed.recovered).toBeUndefined();
    const received = collect(sub, 'publication');
    const replies = [];
    for (const text of ['one', 'two', 'three']) replies.push(await publishHttp(server, 'news', { text }));
    const pubs = await received.until(3);
    expect(pubs.map((p: Publication) => [p.offset, p.data])).toEqual([
      [1, { text: 'one' }],
      [2, { text: 'two' }],
      [3, { text: 'three' }],
    ]);
    expect(pubs.every((p: Publication) => p.epoch === subscribed.epoch)).toBe(true);
    expect(replies.map((r) => r.offset)).toEqual([1, 2, 3]);
    expect(sub.position).toEqual({ epoch: subscribed.epoch, offset: 3 });
  });

  it('publishes from a client where the namespace allows it, durable, ephemeral and with an event', async () => {
    const alice = clientOf(server, { token: tokenFor('alice') });
    const bob = clientOf(server, { token: tokenFor('bob') });
    await Promise.all([alice.connect(), bob.connect()]);
    const aliceSub = alice.subscribe('chat:live');
    const bobSub = bob.subscribe('chat:live');
    await Promise.all([aliceSub.ready, bobSub.ready]);
    const atBob = collect(bobSub, 'publication');

    const durable = await alice.publish('chat:live', { text: 'hello' }, { event: 'message', idempotencyKey: 'k-1' });
    expect(durable.offset).toBe(1);
    const again = await alice.publish('chat:live', { text: 'hello' }, { event: 'message', idempotencyKey: 'k-1' });
    expect(again).toEqual(durable); // applied once
    const ephemeral = await alice.publish('chat:live', { typing: true }, { ephemeral: true });
    expect(ephemeral).toEqual({});

    // Ephemeral publications are not ordered relative to durable ones (§10).
    const both = await atBob.until(2);
    const stored = both.find((p: Publication) => p.offset !== undefined);
    const passing = both.find((p: Publication) => p.offset === undefined);
    expect(stored).toMatchObject({ offset: 1, event: 'message', data: { text: 'hello' } });
    expect(passing).toMatchObject({ data: { typing: true } });
    expect(bobSub.position).toEqual({ epoch: durable.epoch, offset: 1 });
  });

  it('refuses a client publish in a server-only namespace with a typed error', async () => {
    const client = clientOf(server);
    await client.connect();
    const error = await client.publish('news', 'nope').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: 'permission_denied', retry: false, command: 'publish' });
  });

  it('reads history, newest first, and matches what the HTTP API published', async () => {
    const client = clientOf(server);
    await client.connect();
    for (const n of [1, 2, 3, 4]) await publishHttp(server, 'news:history', n);
    const newest = await client.history('news:history', { limit: 2, reverse: true });
    expect(newest.top_offset).toBe(4);
    expect(newest.publications.map((p) => [p.offset, p.data])).toEqual([
      [4, 4],
      [3, 3],
    ]);
    const after = await client.history('news:history', { since: 2 });
    expect(after.publications.map((p) => p.offset)).toEqual([3, 4]);
    expect(after.epoch).toBe(newest.epoch);
  });

  it('answers ping', async () => {
    const client = clientOf(server);
    await client.connect();
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
  });

  it('stops for good on a bad token', async () => {
    const client = clientOf(server, { token: 'not-a-jwt' });
    const closed = nextEvent(client, 'closed');
    await expect(client.connect()).rejects.toMatchObject({ code: 'unauthorized' });
    expect((await closed).error).toMatchObject({ code: 'unauthorized' });
    expect(client.state).toBe('closed');
  });

  it('asks getToken again after an expired token and connects with the fresh one', async () => {
    const tokens = [tokenFor('carol', { exp: Math.floor(Date.now() / 1000) - 3600 }), tokenFor('carol')];
    let asked = 0;
    const client = clientOf(server, { getToken: async () => tokens[Math.min(asked++, 1)]! });
    const refused = nextEvent(client, 'error', (e) => (e as { code?: string }).code === 'token_expired');
    const session = await client.connect();
    await refused;
    expect(session.user).toBe('carol');
    expect(asked).toBe(2);
  });
});
