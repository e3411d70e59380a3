import { describe, expect, it, vi } from 'vitest';

import { StoragePositions, type Publication } from '../../src/index.js';
import type { FakeServer, FakeSocket } from './fake-socket.js';
import { record, setup, useFakeTimers } from './setup.js';

useFakeTimers();

const pub = (offset: number, data: unknown = offset, epoch = 'E1'): Record<string, unknown> => ({
  type: 'publication',
  channel: 'chat:lobby',
  epoch,
  offset,
  time: 1000 + offset,
  data,
});

/** Connects, subscribes to chat:lobby and answers the subscribe with `result`. */
async function subscribed(result = { epoch: 'E1', offset: 0 }, options = {}) {
  const { server, client } = setup({ random: () => 0.5, ...options });
  void client.connect();
  const socket = await server.accept(1);
  const sub = client.subscribe('chat:lobby');
  socket.reply(await socket.next('subscribe'), result);
  await sub.ready;
  return { server, client, socket, sub };
}

/** Drops socket 1, lets the backoff pass, accepts socket 2 and returns its subscribe. */
async function reconnect(server: FakeServer, socket: FakeSocket) {
  socket.serverClose(1006);
  // random() is 0: attempt 1 waits half its 1 s ceiling.
  await vi.advanceTimersByTimeAsync(500);
  const next = await server.accept(2);
  return { next, subscribe: await next.next('subscribe') };
}

describe('recovery positions', () => {
  it('takes the position from a reply without since, and advances it with each publication in order', async () => {
    const { socket, sub } = await subscribed({ epoch: 'E1', offset: 41 });
    expect(sub.position).toEqual({ epoch: 'E1', offset: 41 });
    const seen = record(sub, 'publication');
    socket.deliver(pub(42));
    socket.deliver(pub(43));
    expect(seen.map((p) => p.offset)).toEqual([42, 43]);
    expect(sub.position).toEqual({ epoch: 'E1', offset: 43 });
  });

  it('drops a publication at or below the position in the same epoch', async () => {
    const { socket, sub } = await subscribed({ epoch: 'E1', offset: 5 });
    const seen = record(sub, 'publication');
    socket.deliver(pub(5));
    socket.deliver(pub(6));
    socket.deliver(pub(6));
    socket.deliver(pub(4));
    expect(seen.map((p) => p.offset)).toEqual([6]);
  });

  it('does not move the position on an ephemeral publication', async () => {
    const { socket, sub } = await subscribed({ epoch: 'E1', offset: 5 });
    const seen = record(sub, 'publication');
    socket.deliver({ type: 'publication', channel: 'chat:lobby', time: 1, data: { typing: true } });
    expect(seen).toHaveLength(1);
    expect(sub.position).toEqual({ epoch: 'E1', offset: 5 });
  });

  it('resubscribes with since after a reconnect and keeps the position on recovered: true; the replay advances it', async () => {
    const { server, socket, sub } = await subscribed({ epoch: 'E1', offset: 41 });
    const events = record(sub, 'subscribed');
    const lost = record(sub, 'notRecovered');
    const { next, subscribe } = await reconnect(server, socket);
    expect(subscribe).toMatchObject({ channel: 'chat:lobby', since: { epoch: 'E1', offset: 41 } });
    const seen = record(sub, 'publication');
    // The reply and its replay arrive in one go, as `ws` delivers one TCP read.
    next.reply(subscribe, { epoch: 'E1', offset: 44, recovered: true });
    next.deliver(pub(42));
    next.deliver(pub(43));
    next.deliver(pub(44));
    expect(events).toEqual([{ channel: 'chat:lobby', epoch: 'E1', offset: 44, recovered: true, resubscribed: true }]);
    expect(seen.map((p) => p.offset)).toEqual([42, 43, 44]);
    expect(lost).toEqual([]);
    expect(sub.position).toEqual({ epoch: 'E1', offset: 44 });
  });

  it('surfaces recovered: false as notRecovered before the next publication, and takes the reply position', async () => {
    const { server, socket, sub } = await subscribed({ epoch: 'E1', offset: 41 });
    const order: string[] = [];
    sub.on('notRecovered', (e) => order.push(`notRecovered ${e.reason} ${e.previous.offset}->${e.position.offset}`));
    sub.on('publication', (p) => order.push(`publication ${p.offset}`));
    const { next, subscribe } = await reconnect(server, socket);
    next.reply(subscribe, { epoch: 'E1', offset: 2400, recovered: false });
    next.deliver(pub(2401));
    expect(order).toEqual(['notRecovered recovery_failed 41->2400', 'publication 2401']);
    expect(sub.position).toEqual({ epoch: 'E1', offset: 2401 });
  });

  it('treats recovered: false with a new epoch the same way', async () => {
    const { server, socket, sub } = await subscribed({ epoch: 'E1', offset: 41 });
    const lost = record(sub, 'notRecovered');
    const { next, subscribe } = await reconnect(server, socket);
    next.reply(subscribe, { epoch: 'E2', offset: 3, recovered: false });
    expect(lost).toEqual([
      {
        channel: 'chat:lobby',
        reason: 'recovery_failed',
        previous: { epoch: 'E1', offset: 41 },
        position: { epoch: 'E2', offset: 3 },
      },
    ]);
    expect(sub.position).toEqual({ epoch: 'E2', offset: 3 });
  });

  it('surfaces a publication of another epoch as epoch_changed, then delivers it', async () => {
    const { socket, sub } = await subscribed({ epoch: 'E1', offset: 9 });
    const order: string[] = [];
    sub.on('notRecovered', (e) => order.push(`notRecovered ${e.reason}`));
    sub.on('publication', (p) => order.push(`publication ${p.epoch}/${p.offset}`));
    socket.deliver(pub(1, 'x', 'E2'));
    expect(order).toEqual(['notRecovered epoch_changed', 'publication E2/1']);
    expect(sub.position).toEqual({ epoch: 'E2', offset: 1 });
  });

  it('subscribes with the since option the first time', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const sub = client.subscribe('chat:lobby', { since: { epoch: 'E1', offset: 7 } });
    const subscribe = await socket.next('subscribe');
    expect(subscribe.since).toEqual({ epoch: 'E1', offset: 7 });
    socket.reply(subscribe, { epoch: 'E1', offset: 7, recovered: true });
    await expect(sub.ready).resolves.toMatchObject({ recovered: true, resubscribed: false });
  });

  it('resumes from sessionStorage positions across client instances (a page reload)', async () => {
    const items = new Map<string, string>();
    const storage = {
      getItem: (k: string) => items.get(k) ?? null,
      setItem: (k: string, v: string) => void items.set(k, v),
      removeItem: (k: string) => void items.delete(k),
    };
    vi.stubGlobal('sessionStorage', storage);
    try {
      const first = await subscribed({ epoch: 'E1', offset: 10 }, { positions: 'sessionStorage' });
      first.socket.deliver(pub(11));
      expect(JSON.parse(items.get('fanfare:position:chat:lobby')!)).toEqual({ epoch: 'E1', offset: 11 });
      first.client.close();

      const second = setup({ positions: 'sessionStorage' });
      void second.client.connect();
      const socket = await second.server.accept(1);
      second.client.subscribe('chat:lobby');
      expect((await socket.next('subscribe')).since).toEqual({ epoch: 'E1', offset: 11 });
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('forgets the position on unsubscribe, and ignores pushes after it', async () => {
    const { socket, sub, client } = await subscribed({ epoch: 'E1', offset: 3 });
    const seen = record(sub, 'publication');
    const done = sub.unsubscribe();
    socket.reply(socket.last('unsubscribe'));
    await done;
    socket.deliver(pub(4));
    expect(seen).toEqual([]);
    expect(sub.state).toBe('unsubscribed');
    expect(sub.position).toBeUndefined();
    expect(client.subscription('chat:lobby')).toBeUndefined();
  });

  it('ignores pushes of a channel before its subscribe reply', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const sub = client.subscribe('chat:lobby');
    const seen = record(sub, 'publication');
    const subscribe = await socket.next('subscribe');
    socket.deliver(pub(1));
    socket.reply(subscribe, { epoch: 'E1', offset: 1 });
    socket.deliver(pub(2));
    expect(seen.map((p) => p.offset)).toEqual([2]);
  });

  it('StoragePositions survives a storage that throws', () => {
    const broken = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('quota');
      },
      removeItem: () => {
        throw new Error('denied');
      },
    };
    const positions = new StoragePositions(broken);
    expect(positions.get('a')).toBeUndefined();
    positions.set('a', { epoch: 'e', offset: 2 });
    expect(positions.get('a')).toEqual({ epoch: 'e', offset: 2 });
    positions.delete('a');
    expect(positions.get('a')).toBeUndefined();
  });
});

describe('resubscribe refusals (§13.4 step 4)', () => {
  it('ends only the refused subscription when retry is false', async () => {
    const { server, client } = setup({ random: () => 0.5 });
    void client.connect();
    const socket = await server.accept(1);
    const a = client.subscribe('chat:a');
    const b = client.subscribe('chat:b');
    for (const s of socket.commands('subscribe')) socket.reply(s, { epoch: 'E', offset: 0 });
    await Promise.all([a.ready, b.ready]);
    const ended = record(a, 'unsubscribed');
    const restored = record(client, 'restored');
    socket.serverClose(4506, 'kicked by a moderator');
    await vi.advanceTimersByTimeAsync(1000);
    const next = await server.accept(2);
    const [sa, sb] = [await next.next('subscribe'), await next.next('subscribe')];
    next.fail(sa!, 'banned', false);
    next.reply(sb!, { epoch: 'E', offset: 0, recovered: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(ended).toMatchObject([{ channel: 'chat:a', reason: 'refused', error: { code: 'banned' } }]);
    expect(a.state).toBe('unsubscribed');
    expect(b.state).toBe('subscribed');
    expect(client.subscription('chat:a')).toBeUndefined();
    expect(restored).toEqual([{ subscriptions: 2 }]);
  });

  it('reconnects with backoff when a resubscribe is refused with retry true', async () => {
    const { server, client } = setup({ random: () => 0.5 });
    void client.connect();
    const socket = await server.accept(1);
    const a = client.subscribe('chat:a');
    socket.reply(await socket.next('subscribe'), { epoch: 'E', offset: 0 });
    await a.ready;
    const drops = record(client, 'disconnected');
    socket.serverClose(1006);
    await vi.advanceTimersByTimeAsync(1000);
    const second = await server.accept(2);
    second.fail(await second.next('subscribe'), 'unavailable', true, { retry_after_ms: 3000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(second.closedByClient?.code).toBe(1000);
    // Attempt 2 of the backoff (ceiling 2 s, at least 1 s), raised to the server's 3 s.
    expect(drops.map((d) => d.delayMs)).toEqual([500, 3000]);
    await vi.advanceTimersByTimeAsync(3000);
    const third = await server.accept(3);
    expect(await third.next('subscribe')).toMatchObject({ channel: 'chat:a', since: { epoch: 'E', offset: 0 } });
  });
});
