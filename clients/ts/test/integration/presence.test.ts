// Presence: join and leave pushes, and the member list.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { clientOf, closeClients, nextEvent, startServer, T, tokenFor, type Server } from './server.js';

let server: Server;
beforeAll(async () => {
  server = await startServer();
}, T.start);
afterAll(() => server?.stop());
afterEach(closeClients);

describe('presence', { timeout: T.test }, () => {
  it('pushes join with info and leave, and lists the members', async () => {
    const alice = clientOf(server, { token: tokenFor('alice') });
    const bob = clientOf(server, { token: tokenFor('bob', { info: { name: 'Bob' } }) });
    await Promise.all([alice.connect(), bob.connect()]);
    const sub = alice.subscribe('chat:presence');
    await sub.ready;

    const joined = nextEvent(sub, 'join');
    await bob.subscribe('chat:presence').ready;
    expect(await joined).toEqual({ user: 'bob', info: { name: 'Bob' } });

    const members = await alice.presence('chat:presence');
    expect(members).toEqual({ members: [{ user: 'alice' }, { user: 'bob', info: { name: 'Bob' } }] });

    const left = nextEvent(sub, 'leave');
    bob.close();
    expect(await left).toEqual({ user: 'bob' });
    expect(await alice.presence('chat:presence')).toEqual({ members: [{ user: 'alice' }] });
  });

  it('answers presence in a namespace without it with not_available', async () => {
    const client = clientOf(server);
    await client.connect();
    await expect(client.presence('news')).rejects.toMatchObject({ code: 'not_available', retry: false });
  });
});
