// Members channels, direct channels, the feed and read state (docs/members.md)
// against the real binary: a non-member is refused, member changes arrive as
// `members` events, a direct message is a `notice` in the other user's feed,
// and read cursors come back in `unread`.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { ProtocolError } from '../../src/index.js';
import { api, clientOf, closeClients, nextEvent, startServer, T, tokenFor, type Server } from './server.js';

let server: Server;
beforeAll(async () => {
  server = await startServer({
    extraToml: `
[namespaces.team]
subscribe = "members"
publish = "members"
`,
  });
}, T.start);
afterAll(() => server?.stop());
afterEach(closeClients);

const as = async (user: string) => {
  const client = clientOf(server, { getToken: async () => tokenFor(user) });
  await client.connect();
  return client;
};

describe('conversations', { timeout: T.test }, () => {
  it('refuses a non-member and tells members of member changes', async () => {
    await api(server, 'POST', '/api/members', { channel: 'team:ts', add: ['alice'] });
    const mallory = await as('mallory');
    const refused = mallory.subscribe('team:ts');
    const error = await nextEvent(refused, 'error');
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe('permission_denied');

    const alice = await as('alice');
    const sub = alice.subscribe('team:ts');
    await sub.ready;
    const changed = nextEvent(sub, 'members');
    await api(server, 'POST', '/api/members', { channel: 'team:ts', add: ['bob', 'alice'] });
    expect((await changed).added).toEqual(['bob']);
    expect(await alice.members('team:ts')).toEqual({ members: ['alice', 'bob'], count: 2 });
  });

  it('delivers a direct message as a notice in the other user’s feed, and keeps read state', async () => {
    const alice = await as('alice');
    const feed = alice.subscribe('feed:alice');
    await feed.ready;
    const notice = nextEvent(feed, 'notice');
    const bob = await as('bob');
    const sent = await bob.publish('dm:alice,bob', { text: 'hello alice' });
    const got = await notice;
    expect(got).toMatchObject({ channel: 'dm:alice,bob', offset: sent.offset, from: 'bob', preview: 'hello alice' });

    const position = { epoch: got.epoch, offset: got.offset };
    const before = await alice.unread();
    expect(before.channels.find((c) => c.channel === 'dm:alice,bob')).toMatchObject({ read: 0, unread: 1 });
    expect(await alice.read('dm:alice,bob', position)).toEqual({ moved: true });
    const after = await alice.unread();
    expect(after.channels.find((c) => c.channel === 'dm:alice,bob')).toMatchObject({ read: got.offset, unread: 0 });
  });
});
