import { describe, expect, it, vi } from 'vitest';

import { ClosedError, DisconnectedError, ProtocolError, TimeoutError } from '../../src/index.js';
import { decodeFrame, encodeCommand } from '../../src/wire.js';
import { record, setup, useFakeTimers } from './setup.js';

useFakeTimers();

describe('framing', () => {
  it('sends connect first, with the token, then commands with increasing ids and no absent fields', async () => {
    const { server, client } = setup({ token: 'jwt-1' });
    const connected = client.connect();
    const socket = await server.socket(1);
    expect(socket.url).toBe('ws://fake.test/connection/websocket');
    socket.open();
    const connect = await socket.next('connect');
    expect(connect).toEqual({ id: 1, type: 'connect', token: 'jwt-1' });
    socket.reply(connect, { client: '7', user: 'alice', version: 'fake', ping_interval_ms: 25000 });
    await expect(connected).resolves.toEqual({ client: '7', user: 'alice', version: 'fake', ping_interval_ms: 25000 });

    void client.publish('chat:lobby', { text: 'hi' });
    void client.history('chat:lobby', { limit: 2, reverse: true });
    expect(socket.sent.slice(1)).toEqual([
      { id: 2, type: 'publish', channel: 'chat:lobby', data: { text: 'hi' } },
      { id: 3, type: 'history', channel: 'chat:lobby', limit: 2, reverse: true },
    ]);
    expect(Object.keys(socket.sent[1]!)).toEqual(['id', 'type', 'channel', 'data']);
  });

  it('connects anonymously without a token field', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.socket(1);
    socket.open();
    expect(await socket.next('connect')).toEqual({ id: 1, type: 'connect' });
  });

  it('sends publish options under their wire names', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    void client.publish('chat:lobby', 'x', { event: 'message', idempotencyKey: 'k-1', ephemeral: true });
    expect(socket.last('publish')).toEqual({
      id: 2,
      type: 'publish',
      channel: 'chat:lobby',
      event: 'message',
      data: 'x',
      idempotency_key: 'k-1',
      ephemeral: true,
    });
  });

  it('matches replies to commands by id, whatever their order', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const first = client.publish('chat:a', 1);
    const second = client.publish('chat:b', 2);
    const [a, b] = socket.commands('publish');
    socket.reply(b!, { epoch: 'e', offset: 20 });
    socket.reply(a!, { epoch: 'e', offset: 10 });
    await expect(first).resolves.toEqual({ epoch: 'e', offset: 10 });
    await expect(second).resolves.toEqual({ epoch: 'e', offset: 20 });
  });

  it('rejects an error reply with a ProtocolError carrying code, retry and retry_after_ms', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const slow = client.publish('comments:x', 'again');
    socket.fail(socket.last('publish'), 'slow_mode', true, { retry_after_ms: 8412 });
    const error = await slow.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({
      code: 'slow_mode',
      wireCode: 'slow_mode',
      retry: true,
      retryAfterMs: 8412,
      command: 'publish',
    });
  });

  it('reads an unknown error code as unknown and keeps the wire code and retry flag', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const p = client.ping();
    socket.fail(socket.last('ping'), 'quota_exhausted', true);
    await expect(p).rejects.toMatchObject({ code: 'unknown', wireCode: 'quota_exhausted', retry: true });
  });

  it('times a command out, and ignores its late reply', async () => {
    const { server, client } = setup({ commandTimeoutMs: 1000 });
    void client.connect();
    const socket = await server.accept(1);
    const late = client.presence('chat:lobby');
    const settled = late.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    const error = await settled;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'timeout', command: 'presence' });
    socket.reply(socket.last('presence'), { members: [] });
    const next = client.ping();
    socket.reply(socket.last('ping'));
    await expect(next).resolves.toBeTypeOf('number');
  });

  it('holds a command made before the connection and sends it once connected', async () => {
    const { server, client } = setup();
    const early = client.publish('chat:lobby', 'early');
    void client.connect();
    const socket = await server.accept(1);
    const publish = await socket.next('publish');
    expect(publish).toMatchObject({ channel: 'chat:lobby', data: 'early' });
    socket.reply(publish, { epoch: 'e', offset: 1 });
    await expect(early).resolves.toEqual({ epoch: 'e', offset: 1 });
  });

  it('times out a held command when no connection comes', async () => {
    const { client } = setup({ commandTimeoutMs: 500 });
    const held = client.ping().catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(500);
    expect(await held).toBeInstanceOf(TimeoutError);
  });

  it('rejects pending commands with DisconnectedError when the connection drops', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const pending = client.publish('chat:lobby', 'x').catch((e: unknown) => e);
    socket.serverClose(1006);
    const error = await pending;
    expect(error).toBeInstanceOf(DisconnectedError);
    expect(error).toMatchObject({ code: 'disconnected', retry: true });
  });

  it('rejects commands with ClosedError after close()', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const closed = record(client, 'closed');
    client.close();
    expect(socket.closedByClient?.code).toBe(1000);
    expect(closed).toEqual([{ reason: 'closed by the client' }]);
    await expect(client.ping()).rejects.toBeInstanceOf(ClosedError);
  });

  it('ignores frames it cannot read and push types it does not know', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    const sub = client.subscribe('chat:lobby');
    socket.reply(await socket.next('subscribe'), { epoch: 'e', offset: 0 });
    const pubs = record(sub, 'publication');
    socket.deliver('not json');
    socket.deliver('[1,2]');
    socket.deliver({ type: 'future_push', channel: 'chat:lobby', x: 1 });
    socket.deliver({
      type: 'publication',
      channel: 'chat:lobby',
      epoch: 'e',
      offset: 1,
      time: 1,
      data: 'ok',
      newField: true,
    });
    expect(pubs).toHaveLength(1);
    expect(pubs[0]).toMatchObject({ offset: 1, data: 'ok' });
  });
});

describe('wire codec', () => {
  it('decodes replies and pushes, and nothing else', () => {
    expect(decodeFrame('{"id":5,"result":{"a":1}}')).toEqual({ kind: 'reply', reply: { id: 5, result: { a: 1 } } });
    expect(decodeFrame('{"id":5,"error":{"code":"bad_request","message":"m","retry":false}}')).toEqual({
      kind: 'reply',
      reply: { id: 5, error: { code: 'bad_request', message: 'm', retry: false } },
    });
    expect(decodeFrame('{"type":"leave","channel":"c","user":"u"}')).toEqual({
      kind: 'push',
      push: { type: 'leave', channel: 'c', user: 'u' },
    });
    expect(decodeFrame('"x"')).toBeNull();
    expect(decodeFrame('{"nothing":1}')).toBeNull();
    expect(decodeFrame('{')).toBeNull();
  });

  it('encodes id and type first and leaves out undefined fields', () => {
    expect(encodeCommand(3, 'history', { channel: 'c', since: undefined, limit: 0 })).toBe(
      '{"id":3,"type":"history","channel":"c","limit":0}',
    );
  });
});

describe('closing', () => {
  it('leaves no timer behind after close(), even mid-handshake', async () => {
    const { server, client } = setup();
    void client.connect();
    await server.socket(1); // never opened
    client.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no timer behind after close() of a live connection with a subscription', async () => {
    const { server, client } = setup();
    void client.connect();
    const socket = await server.accept(1);
    client.subscribe('chat:lobby');
    socket.reply(await socket.next('subscribe'), { epoch: 'E', offset: 0 });
    client.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
