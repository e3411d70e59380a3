// The commands and events of issue 13 (members, read state, typing, edit
// and delete), which the server does not implement yet: their exact JSON
// (the decided wire surface) against the fake socket, and presence, react.

import { describe, expect, it } from 'vitest';

import { record, setup, useFakeTimers } from './setup.js';

useFakeTimers();

async function connected() {
  const { server, client } = setup();
  void client.connect();
  const socket = await server.accept(1);
  return { client, socket };
}

async function subscribedTo(channel: string) {
  const { client, socket } = await connected();
  const sub = client.subscribe(channel);
  socket.reply(await socket.next('subscribe'), { epoch: 'E', offset: 41 });
  await sub.ready;
  return { client, socket, sub };
}

describe('issue-13 commands', () => {
  it('members list, add and remove', async () => {
    const { client, socket } = await connected();
    const list = client.members('team:general', { after: 'bob', limit: 100 });
    expect(socket.last('members')).toEqual({
      id: 2,
      type: 'members',
      channel: 'team:general',
      action: 'list',
      after: 'bob',
      limit: 100,
    });
    socket.reply(socket.last('members'), { members: ['carol', 'dave'], count: 4, next: 'dave' });
    await expect(list).resolves.toEqual({ members: ['carol', 'dave'], count: 4, next: 'dave' });

    const add = client.addMembers('team:general', ['erin']);
    expect(socket.last('members')).toEqual({
      id: 3,
      type: 'members',
      channel: 'team:general',
      action: 'add',
      users: ['erin'],
    });
    socket.reply(socket.last('members'), { added: ['erin'], count: 5 });
    await expect(add).resolves.toEqual({ added: ['erin'], count: 5 });

    const remove = client.removeMembers('team:general', ['erin']);
    expect(socket.last('members')).toEqual({
      id: 4,
      type: 'members',
      channel: 'team:general',
      action: 'remove',
      users: ['erin'],
    });
    socket.reply(socket.last('members'), { removed: ['erin'], count: 4 });
    await expect(remove).resolves.toEqual({ removed: ['erin'], count: 4 });
  });

  it('members refusals carry their codes', async () => {
    const { client, socket } = await connected();
    const add = client.addMembers('team:general', ['x']);
    socket.fail(socket.last('members'), 'too_many_members', false);
    await expect(add).rejects.toMatchObject({ code: 'too_many_members', retry: false });
  });

  it('read, delivered and unread', async () => {
    const { client, socket } = await connected();
    const read = client.read('dm:alice,bob', { epoch: 'E', offset: 42 });
    expect(socket.last('read')).toEqual({ id: 2, type: 'read', channel: 'dm:alice,bob', epoch: 'E', offset: 42 });
    socket.reply(socket.last('read'), { moved: true });
    await expect(read).resolves.toEqual({ moved: true });

    const delivered = client.delivered('dm:alice,bob', { epoch: 'E', offset: 43 });
    expect(socket.last('delivered')).toEqual({
      id: 3,
      type: 'delivered',
      channel: 'dm:alice,bob',
      epoch: 'E',
      offset: 43,
    });
    socket.reply(socket.last('delivered'));
    await expect(delivered).resolves.toBeUndefined();

    const unread = client.unread({ after: 'team:a', limit: 100 });
    expect(socket.last('unread')).toEqual({ id: 4, type: 'unread', after: 'team:a', limit: 100 });
    const page = {
      channels: [{ channel: 'dm:alice,bob', epoch: 'E', offset: 57, read: 42, unread: 15 }],
      next: 'dm:alice,bob',
    };
    socket.reply(socket.last('unread'), page);
    await expect(unread).resolves.toEqual(page);
  });

  it('typing, edit and delete', async () => {
    const { client, socket } = await connected();
    const typing = client.typing('team:general');
    expect(socket.last('typing')).toEqual({ id: 2, type: 'typing', channel: 'team:general' });
    socket.reply(socket.last('typing'));
    await expect(typing).resolves.toBeUndefined();

    const edit = client.edit('team:general', 42, { text: 'fixed' });
    expect(socket.last('edit')).toEqual({
      id: 3,
      type: 'edit',
      channel: 'team:general',
      offset: 42,
      data: { text: 'fixed' },
    });
    socket.reply(socket.last('edit'), { epoch: 'E', offset: 58 });
    await expect(edit).resolves.toEqual({ epoch: 'E', offset: 58 });

    const del = client.delete('team:general', 42);
    expect(socket.last('delete')).toEqual({ id: 4, type: 'delete', channel: 'team:general', offset: 42 });
    socket.reply(socket.last('delete'), { epoch: 'E', offset: 59, deleted: [42] });
    await expect(del).resolves.toEqual({ epoch: 'E', offset: 59, deleted: [42] });
  });

  it('edit by someone else is permission_denied; a gone offset is not_found', async () => {
    const { client, socket } = await connected();
    const edit = client.edit('team:general', 42, 'x');
    socket.fail(socket.last('edit'), 'permission_denied', false);
    await expect(edit).rejects.toMatchObject({ code: 'permission_denied' });
    const del = client.delete('team:general', 99);
    socket.fail(socket.last('delete'), 'not_found', false);
    await expect(del).rejects.toMatchObject({ code: 'not_found' });
  });
});

describe('issue-13 events', () => {
  const base = { type: 'publication', channel: 'team:general', time: 1 };

  it('routes fanfare:members, a stored publication that moves the position', async () => {
    const { socket, sub } = await subscribedTo('team:general');
    const members = record(sub, 'members');
    const messages = record(sub, 'publication');
    socket.deliver({ ...base, epoch: 'E', offset: 42, event: 'fanfare:members', data: { added: ['erin'] } });
    socket.deliver({ ...base, epoch: 'E', offset: 43, event: 'fanfare:members', data: { removed: ['erin'] } });
    expect(members).toMatchObject([{ added: ['erin'] }, { removed: ['erin'] }]);
    expect(members[0]!.publication.offset).toBe(42);
    expect(messages).toEqual([]);
    expect(sub.position).toEqual({ epoch: 'E', offset: 43 });
  });

  it('routes fanfare:read, fanfare:delivered and fanfare:typing, which are ephemeral', async () => {
    const { socket, sub } = await subscribedTo('team:general');
    const reads = record(sub, 'read');
    const delivered = record(sub, 'delivered');
    const typing = record(sub, 'typing');
    socket.deliver({ ...base, event: 'fanfare:read', data: { user: 'alice', epoch: 'E', offset: 42 } });
    socket.deliver({ ...base, event: 'fanfare:delivered', data: { user: 'bob', epoch: 'E', offset: 40 } });
    socket.deliver({ ...base, event: 'fanfare:typing', data: { user: 'alice', expires_ms: 5000 } });
    expect(reads).toMatchObject([{ user: 'alice', epoch: 'E', offset: 42 }]);
    expect(delivered).toMatchObject([{ user: 'bob', epoch: 'E', offset: 40 }]);
    expect(typing).toMatchObject([{ user: 'alice', expires_ms: 5000 }]);
    expect(sub.position).toEqual({ epoch: 'E', offset: 41 });
  });

  it('routes fanfare:notice of a feed channel', async () => {
    const { socket, sub } = await subscribedTo('feed:alice');
    const notices = record(sub, 'notice');
    socket.deliver({
      type: 'publication',
      channel: 'feed:alice',
      epoch: 'E',
      offset: 42,
      time: 1,
      event: 'fanfare:notice',
      data: { channel: 'dm:alice,bob', epoch: 'F', offset: 42, from: 'bob', preview: 'hello' },
    });
    expect(notices).toMatchObject([{ channel: 'dm:alice,bob', epoch: 'F', offset: 42, from: 'bob', preview: 'hello' }]);
    expect(notices[0]!.publication.channel).toBe('feed:alice');
  });

  it('routes update records, delete records and tombstones in offset order', async () => {
    const { socket, sub } = await subscribedTo('team:general');
    const order: string[] = [];
    sub.on('publication', (p) => order.push(`publication ${p.offset}`));
    sub.on('update', (u) => order.push(`update ${u.publication.offset} of ${u.target}: ${JSON.stringify(u.data)}`));
    sub.on('delete', (d) => order.push(`delete ${d.publication.offset} of ${d.offsets.join(',')}`));
    sub.on('tombstone', (t) => order.push(`tombstone ${t.offset}`));
    socket.deliver({ ...base, epoch: 'E', offset: 42, deleted: true });
    socket.deliver({ ...base, epoch: 'E', offset: 43, data: { text: 'hi' } });
    socket.deliver({ ...base, epoch: 'E', offset: 44, updates: 43, data: { text: 'hi!' } });
    socket.deliver({ ...base, epoch: 'E', offset: 45, deletes: [43] });
    expect(order).toEqual(['tombstone 42', 'publication 43', 'update 44 of 43: {"text":"hi!"}', 'delete 45 of 43']);
    expect(sub.position).toEqual({ epoch: 'E', offset: 45 });
  });

  it('routes fanfare:reactions, and an unknown fanfare:* event as a publication', async () => {
    const { socket, sub } = await subscribedTo('live:stage');
    const reactions = record(sub, 'reactions');
    const messages = record(sub, 'publication');
    const frame = { type: 'publication', channel: 'live:stage', time: 1 };
    socket.deliver({ ...frame, event: 'fanfare:reactions', data: { counts: { '👍': 120 }, window_ms: 250 } });
    socket.deliver({ ...frame, event: 'fanfare:future', data: { x: 1 } });
    expect(reactions).toMatchObject([{ counts: { '👍': 120 }, window_ms: 250 }]);
    expect(messages).toMatchObject([{ event: 'fanfare:future' }]);
  });
});

describe('presence and react', () => {
  it('routes join and leave of the channel', async () => {
    const { client, socket, sub } = await subscribedTo('chat:lobby');
    const joins = record(sub, 'join');
    const leaves = record(sub, 'leave');
    socket.deliver({ type: 'join', channel: 'chat:lobby', user: 'bob', info: { name: 'Bob' } });
    socket.deliver({ type: 'join', channel: 'chat:other', user: 'carol' });
    socket.deliver({ type: 'leave', channel: 'chat:lobby', user: 'bob' });
    expect(joins).toEqual([{ user: 'bob', info: { name: 'Bob' } }]);
    expect(leaves).toEqual([{ user: 'bob' }]);

    const presence = client.presence('chat:lobby');
    expect(socket.last('presence')).toEqual({ id: 3, type: 'presence', channel: 'chat:lobby' });
    socket.reply(socket.last('presence'), { members: [{ user: 'alice' }, { user: 'bob', info: { name: 'Bob' } }] });
    await expect(presence).resolves.toEqual({ members: [{ user: 'alice' }, { user: 'bob', info: { name: 'Bob' } }] });
  });

  it('react sends the reaction', async () => {
    const { client, socket } = await connected();
    const reacted = client.react('live:stage', '👍');
    expect(socket.last('react')).toEqual({ id: 2, type: 'react', channel: 'live:stage', reaction: '👍' });
    socket.reply(socket.last('react'));
    await expect(reacted).resolves.toBeUndefined();
  });
});
