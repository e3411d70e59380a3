// What every unit test starts with: a client wired to a FakeServer, under
// vitest's fake timers so that backoff delays and timeouts run on demand.

import { afterEach, beforeEach, vi } from 'vitest';

import { FanfareClient, type ClientOptions, type Emitter } from '../../src/index.js';
import { FakeServer } from './fake-socket.js';

export function useFakeTimers(): void {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

export function setup(options: Partial<ClientOptions> = {}): { server: FakeServer; client: FanfareClient } {
  const server = new FakeServer();
  const client = new FanfareClient({
    url: 'ws://fake.test/connection/websocket',
    WebSocket: server.WebSocket,
    ...options,
  });
  return { server, client };
}

/** Collects every event `name` of `emitter` into an array. */
export function record<E extends object, K extends keyof E>(emitter: Emitter<E>, name: K): E[K][] {
  const events: E[K][] = [];
  emitter.on(name, (event) => events.push(event));
  return events;
}
