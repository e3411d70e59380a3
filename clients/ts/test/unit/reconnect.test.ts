import { describe, expect, it, vi } from 'vitest';

import { backoffCeiling, backoffDelay, closeDecision, DEFAULT_BACKOFF, FanfareClient } from '../../src/index.js';
import { parseRetryAfter } from '../../src/socket.js';
import { FakeSocket } from './fake-socket.js';
import { record, setup, useFakeTimers } from './setup.js';

useFakeTimers();

describe('backoff (§13.4)', () => {
  it('has the ceilings 1, 2, 4, 8, 16, 30, 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffCeiling(n, DEFAULT_BACKOFF))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });

  it('jitters each delay fully, within [0, ceiling]', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const ceiling = backoffCeiling(attempt, DEFAULT_BACKOFF);
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, () => 0)).toBe(0);
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, () => 0.5)).toBe(ceiling / 2);
      expect(backoffDelay(attempt, DEFAULT_BACKOFF, () => 0.9999999)).toBe(ceiling);
      const delays = Array.from({ length: 400 }, () => backoffDelay(attempt, DEFAULT_BACKOFF, Math.random));
      for (const delay of delays) {
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
      // Full jitter spreads a crowd over the whole ceiling, not its upper half only.
      expect(delays.some((delay) => delay < ceiling / 4)).toBe(true);
    }
  });

  it('never waits less than the server asked', () => {
    expect(backoffDelay(1, DEFAULT_BACKOFF, () => 0, 2750)).toBe(2750);
    expect(backoffDelay(6, DEFAULT_BACKOFF, () => 0.5, 2750)).toBe(15000);
  });

  it('reads Retry-After in seconds or as an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(['5'])).toBe(5000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 4000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('close codes (§8, §13.4)', () => {
  it('stops on 4000–4499, 1002, 1007, 1009 and reconnects on the rest', () => {
    for (const code of [4000, 4001, 4003, 4004, 4499, 1002, 1007, 1009]) expect(closeDecision(code)).toBe('stop');
    for (const code of [4500, 4501, 4502, 4505, 4506, 4999, 1000, 1001, 1006, 1011]) {
      expect(closeDecision(code)).toBe('reconnect');
    }
  });
});

describe('reconnecting', () => {
  it('grows the delay per failed attempt with jitter bounds, and resets it once restored', async () => {
    const randoms = [0.75, 0.5, 0.9999995, 0.625];
    const { server, client } = setup({ random: () => randoms.shift() ?? 0 });
    const drops = record(client, 'disconnected');
    void client.connect();
    const first = await server.accept(1);
    first.serverClose(1006);
    await vi.advanceTimersByTimeAsync(750); // attempt 1: 1000 × 0.75
    (await server.socket(2)).serverClose(1006); // fails before it opens
    await vi.advanceTimersByTimeAsync(1000); // attempt 2: 2000 × 0.5
    (await server.socket(3)).serverClose(1006);
    await vi.advanceTimersByTimeAsync(4000); // attempt 3: 4000 × ~1 (then 1000 × 0.625)
    const fourth = await server.accept(4);
    await vi.advanceTimersByTimeAsync(0);
    fourth.serverClose(4500, 'shutting down');
    await vi.advanceTimersByTimeAsync(0);
    // Restored (no subscriptions), so the counter started again: attempt 1.
    expect(drops.map((d) => [d.code, d.delayMs])).toEqual([
      [1006, 750],
      [1006, 1000],
      [1006, 4000],
      [4500, 625],
    ]);
  });

  it('does not reset the counter until every resubscribe is answered', async () => {
    const { server, client } = setup({ random: () => 0.5 });
    const drops = record(client, 'disconnected');
    void client.connect();
    const first = await server.accept(1);
    client.subscribe('chat:a');
    first.reply(await first.next('subscribe'), { epoch: 'E', offset: 0 });
    first.serverClose(1006);
    await vi.advanceTimersByTimeAsync(500);
    const second = await server.accept(2);
    await second.next('subscribe'); // left unanswered
    second.serverClose(1006);
    await vi.advanceTimersByTimeAsync(0);
    expect(drops.map((d) => d.delayMs)).toEqual([500, 1000]);
  });

  it("honours a disconnect push's reconnect_after_ms as a lower bound", async () => {
    const { server, client } = setup({ random: () => 0.5 });
    const drops = record(client, 'disconnected');
    void client.connect();
    const socket = await server.accept(1);
    socket.deliver({
      type: 'disconnect',
      code: 4500,
      reason: 'shutting down',
      reconnect: true,
      reconnect_after_ms: 2750,
    });
    socket.serverClose(4500, 'shutting down');
    expect(drops).toEqual([{ code: 4500, reason: 'shutting down', delayMs: 2750 }]);
    await vi.advanceTimersByTimeAsync(2749);
    expect(server.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.sockets).toHaveLength(2);
  });

  it("honours the Retry-After of a refused handshake (ws's unexpected-response)", async () => {
    const listeners = new Map<string, (...args: unknown[]) => void>();
    class NodeLikeSocket extends FakeSocket {
      terminated = false;
      on(event: string, listener: (...args: unknown[]) => void) {
        listeners.set(event, listener);
        return this;
      }
      terminate() {
        this.terminated = true;
      }
    }
    const sockets: NodeLikeSocket[] = [];
    const client = new FanfareClient({
      url: 'ws://fake.test/connection/websocket',
      WebSocket: class extends NodeLikeSocket {
        constructor(url: string) {
          super(url);
          sockets.push(this);
        }
      },
      random: () => 0.5,
    });
    const drops = record(client, 'disconnected');
    void client.connect();
    await vi.advanceTimersByTimeAsync(0);
    listeners.get('unexpected-response')!({}, { statusCode: 503, headers: { 'retry-after': '2' } });
    expect(sockets[0]!.terminated).toBe(true);
    sockets[0]!.serverClose(1006);
    expect(drops).toEqual([{ code: 1006, reason: '', delayMs: 2000 }]);
  });

  it('stops on a close code of 4000–4499 and does not reconnect', async () => {
    const { server, client } = setup();
    const closed = record(client, 'closed');
    void client.connect();
    const socket = await server.accept(1);
    socket.deliver({ type: 'disconnect', code: 4003, reason: 'disconnected by server', reconnect: false });
    socket.serverClose(4003, 'disconnected by server');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe('closed');
    expect(closed).toMatchObject([{ code: 4003 }]);
    expect(server.sockets).toHaveLength(1);
  });

  it('stops when the socket ended without a close frame after a disconnect push saying reconnect: false', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    socket.deliver({ type: 'disconnect', code: 4003, reason: 'disconnected by server', reconnect: false });
    socket.serverClose(1006);
    expect(client.state).toBe('closed');
  });

  it('reconnects on 4501 and on 1006', async () => {
    const { server, client } = setup({ random: () => 0.5 });
    const drops = record(client, 'disconnected');
    const connected = client.connect();
    await server.accept(1);
    await connected;
    server.current.serverClose(4501, 'slow consumer');
    await vi.advanceTimersByTimeAsync(500);
    await server.accept(2);
    await vi.advanceTimersByTimeAsync(0); // restored: the counter is back at 0
    server.current.serverClose(1006);
    await vi.advanceTimersByTimeAsync(500);
    await server.socket(3);
    expect(drops.map((d) => [d.code, d.delayMs])).toEqual([
      [4501, 500],
      [1006, 500],
    ]);
  });

  it('closes a silent connection after 2 × ping_interval_ms + 5 s, pinging when idle', async () => {
    const { server, client } = setup({ random: () => 0.5 });
    void client.connect();
    const drops = record(client, 'disconnected');
    const socket = await server.accept(1, { ping_interval_ms: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    const ping = await socket.next('ping');
    socket.reply(ping);
    await vi.advanceTimersByTimeAsync(6000);
    expect(socket.closedByClient).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2000);
    expect(socket.closedByClient).toEqual({ code: 1000, reason: 'heartbeat timeout' });
    expect(drops).toMatchObject([{ code: 1000, reason: 'heartbeat timeout' }]);
  });

  it('fails an attempt whose connect gets no reply within connectTimeoutMs', async () => {
    const { server, client } = setup({ random: () => 0.5, connectTimeoutMs: 2000 });
    const drops = record(client, 'disconnected');
    void client.connect();
    const socket = await server.socket(1);
    socket.open();
    await vi.advanceTimersByTimeAsync(2000);
    expect(socket.closedByClient?.code).toBe(1000);
    expect(drops).toHaveLength(1);
  });
});

describe('tokens', () => {
  it('asks getToken on every attempt', async () => {
    let n = 0;
    const getToken = vi.fn(async () => `jwt-${++n}`);
    const { server, client } = setup({ getToken, random: () => 0.5 });
    void client.connect();
    const first = await server.socket(1);
    first.open();
    expect((await first.next('connect')).token).toBe('jwt-1');
    first.reply(first.last('connect'), { client: '1', user: 'a', version: 'v', ping_interval_ms: 25000 });
    first.serverClose(1006);
    await vi.advanceTimersByTimeAsync(500);
    const second = await server.socket(2);
    second.open();
    expect((await second.next('connect')).token).toBe('jwt-2');
  });

  it('fetches a new token after token_expired and connects with it', async () => {
    let n = 0;
    const { server, client } = setup({ getToken: async () => `jwt-${++n}`, random: () => 0.5 });
    const connected = client.connect();
    const first = await server.socket(1);
    first.open();
    first.fail(await first.next('connect'), 'token_expired', false);
    await vi.advanceTimersByTimeAsync(0);
    expect(first.closedByClient).toBeDefined();
    await vi.advanceTimersByTimeAsync(500);
    const second = await server.socket(2);
    second.open();
    const connect = await second.next('connect');
    expect(connect.token).toBe('jwt-2');
    second.reply(connect, { client: '2', user: 'a', version: 'v', ping_interval_ms: 25000 });
    await expect(connected).resolves.toMatchObject({ client: '2' });
  });

  it('also re-fetches after a bare close 4001', async () => {
    const getToken = vi.fn(async () => 'jwt');
    const { server, client } = setup({ getToken, random: () => 0.5 });
    void client.connect();
    (await server.accept(1)).serverClose(4001, 'unauthorized');
    await vi.advanceTimersByTimeAsync(500);
    await server.socket(2);
    expect(getToken).toHaveBeenCalledTimes(2);
  });

  it('gives up after a fresh token is refused too', async () => {
    const { server, client } = setup({ getToken: async () => 'bad', random: () => 0.5 });
    const connected = client.connect().catch((e: unknown) => e);
    for (const n of [1, 2]) {
      await vi.advanceTimersByTimeAsync(1000);
      const socket = await server.socket(n);
      socket.open();
      socket.fail(await socket.next('connect'), 'unauthorized', false);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(client.state).toBe('closed');
    expect(await connected).toMatchObject({ code: 'unauthorized' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(server.sockets).toHaveLength(2);
  });

  it('stops at once on unauthorized with a fixed token', async () => {
    const { server, client } = setup({ token: 'bad' });
    const closed = record(client, 'closed');
    const connected = client.connect().catch((e: unknown) => e);
    const socket = await server.socket(1);
    socket.open();
    socket.fail(await socket.next('connect'), 'unauthorized', false);
    expect(await connected).toMatchObject({ code: 'unauthorized', retry: false });
    expect(closed).toMatchObject([{ code: 4001, error: { code: 'unauthorized' } }]);
  });

  it('stops on too_many_connections although it says retry (its close 4004 says not by itself)', async () => {
    const { server, client } = setup({ token: 't' });
    void client.connect().catch(() => {});
    const socket = await server.socket(1);
    socket.open();
    socket.fail(await socket.next('connect'), 'too_many_connections', true, { retry_after_ms: 5000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(client.state).toBe('closed');
  });

  it('retries a connect refused with retry: true after at least retry_after_ms', async () => {
    const { server, client } = setup({ random: () => 0.5 });
    const drops = record(client, 'disconnected');
    void client.connect();
    const socket = await server.socket(1);
    socket.open();
    socket.fail(await socket.next('connect'), 'unavailable', true, { retry_after_ms: 1500 });
    await vi.advanceTimersByTimeAsync(0);
    expect(drops.map((d) => d.delayMs)).toEqual([1500]);
  });
});

describe('the url option', () => {
  it('is called before each attempt', async () => {
    let port = 1;
    const { server, client } = setup({ url: () => `ws://fake.test:${port++}/connection/websocket`, random: () => 0.5 });
    void client.connect();
    (await server.accept(1)).serverClose(1006);
    await vi.advanceTimersByTimeAsync(500);
    const second = await server.socket(2);
    expect(server.sockets.map((s) => s.url)).toEqual([
      'ws://fake.test:1/connection/websocket',
      'ws://fake.test:2/connection/websocket',
    ]);
    expect(second).toBeDefined();
  });
});
