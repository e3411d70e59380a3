// Recovery against the real binary: after a dropped connection, after the
// server restarts on the same data directory (a shutdown and a crash), and
// the explicit "not recovered" when the gap is larger than recovery_limit.
//
// The client's `url` callback is the test's gate: while it is closed the
// client cannot reconnect, so the publications made meanwhile are surely
// missed and must come back through recovery.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { Publication } from '../../src/index.js';
import {
  api,
  clientOf,
  closeClients,
  collect,
  nextEvent,
  publishHttp,
  scratchDir,
  startServer,
  T,
  tokenFor,
  urlGate,
  type Server,
} from './server.js';

afterEach(closeClients);

/** Kicks the client's connection through the HTTP API: close 4506, which says reconnect. */
async function kick(server: Server, connection: string, channel: string): Promise<void> {
  const result = await api<{ closed: number }>(server, 'POST', '/api/moderation', {
    action: 'kick',
    connection,
    channel,
  });
  expect(result.closed).toBe(1);
}

describe('recovery after a dropped connection', { timeout: T.test }, () => {
  let server: Server;
  beforeAll(async () => {
    server = await startServer();
  }, T.start);
  afterAll(() => server?.stop());

  it('replays exactly the publications missed while away, in order, and then goes live', async () => {
    const gate = urlGate(server.url);
    const client = clientOf({ url: gate.url }, { token: tokenFor('alice') });
    const session = await client.connect();
    const sub = client.subscribe('news:drop');
    await sub.ready;
    const received = collect(sub, 'publication');
    await publishHttp(server, 'news:drop', 'before');
    await received.until(1);

    gate.close();
    const dropped = nextEvent(client, 'disconnected');
    await kick(server, session.client, 'news:drop');
    expect((await dropped).code).toBe(4506);
    for (const text of ['missed-1', 'missed-2', 'missed-3']) await publishHttp(server, 'news:drop', text);

    const resubscribed = nextEvent(sub, 'subscribed', (e) => e.resubscribed);
    const lost = collect(sub, 'notRecovered');
    gate.open(server.url);
    expect(await resubscribed).toMatchObject({ recovered: true, offset: 4 });
    await publishHttp(server, 'news:drop', 'live');
    const all = await received.until(5);
    expect(all.map((p: Publication) => [p.offset, p.data])).toEqual([
      [1, 'before'],
      [2, 'missed-1'],
      [3, 'missed-2'],
      [4, 'missed-3'],
      [5, 'live'],
    ]);
    expect(lost.events).toEqual([]);
  });

  it('says notRecovered when more was missed than recovery_limit, and takes the new position', async () => {
    const gate = urlGate(server.url);
    const client = clientOf({ url: gate.url }, { token: tokenFor('alice') });
    const session = await client.connect();
    const sub = client.subscribe('small:gap');
    await sub.ready;
    const received = collect(sub, 'publication');
    await publishHttp(server, 'small:gap', 1);
    await received.until(1);

    gate.close();
    const dropped = nextEvent(client, 'disconnected');
    await kick(server, session.client, 'small:gap');
    await dropped;
    for (const n of [2, 3, 4, 5]) await publishHttp(server, 'small:gap', n); // 4 > recovery_limit 2

    const lost = nextEvent(sub, 'notRecovered');
    const resubscribed = nextEvent(sub, 'subscribed', (e) => e.resubscribed);
    gate.open(server.url);
    expect(await resubscribed).toMatchObject({ recovered: false, offset: 5 });
    const event = await lost;
    expect(event).toMatchObject({ reason: 'recovery_failed', previous: { offset: 1 }, position: { offset: 5 } });
    await publishHttp(server, 'small:gap', 6);
    const all = await received.until(2);
    expect(all.map((p: Publication) => p.data)).toEqual([1, 6]); // nothing of the gap is replayed
    expect(sub.position?.offset).toBe(6);
  });
});

describe('recovery after the server restarts', { timeout: T.test }, () => {
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`resumes from the data directory after ${signal === 'SIGTERM' ? 'a shutdown' : 'a crash'} (${signal})`, async () => {
      const dataDir = scratchDir();
      const first = await startServer({ dataDir });
      let second: Server | undefined;
      try {
        const gate = urlGate(first.url);
        const client = clientOf({ url: gate.url }, { getToken: async () => tokenFor('alice') });
        await client.connect();
        const sub = client.subscribe('news:restart');
        const before = await sub.ready;
        const received = collect(sub, 'publication');
        await publishHttp(first, 'news:restart', 'a');
        await publishHttp(first, 'news:restart', 'b');
        await received.until(2);

        gate.close();
        const dropped = nextEvent(client, 'disconnected');
        await first.stop(signal);
        const drop = await dropped;
        // A shutdown says 4500 (reconnect); a crash ends the socket without a close frame.
        expect(drop.code).toBe(signal === 'SIGTERM' ? 4500 : 1006);

        second = await startServer({ dataDir });
        for (const text of ['c', 'd', 'e']) await publishHttp(second, 'news:restart', text);
        const resubscribed = nextEvent(sub, 'subscribed', (e) => e.resubscribed, T.event * 2);
        gate.open(second.url);
        const after = await resubscribed;
        expect(after).toMatchObject({ recovered: true, epoch: before.epoch, offset: 5 });
        const all = await received.until(5);
        expect(all.map((p: Publication) => [p.offset, p.data])).toEqual([
          [1, 'a'],
          [2, 'b'],
          [3, 'c'],
          [4, 'd'],
          [5, 'e'],
        ]);
      } finally {
        await first.stop();
        await second?.stop();
      }
    });
  }
});
