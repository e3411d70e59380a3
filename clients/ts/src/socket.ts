// The WebSocket this package needs: the browser's (and Node 22's) global
// one, or any constructor with the same shape, such as the `ws` package's
// in Node 20. Only the standard surface is used, plus two `ws` extras when
// the socket has an `on` method: 'ping' (liveness, §12) and
// 'unexpected-response' (the Retry-After of a refused handshake, §2.1).

/**
 * An event handler property. Declared bivariant (the method-parameter rule)
 * so that the browser's and `ws`'s sockets, whose handlers take their own
 * richer event types, fit without a cast.
 */
export type EventHandler<E> = { handle(event: E): void }['handle'];

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: EventHandler<unknown> | null;
  onmessage: EventHandler<{ data: unknown }> | null;
  onclose: EventHandler<{ code: number; reason: string }> | null;
  onerror: EventHandler<unknown> | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The `ws` package's extras this package listens to. */
interface NodeWebSocketExtras {
  on(event: 'ping', listener: () => void): unknown;
  on(event: 'unexpected-response', listener: (request: unknown, response: HttpResponseLike) => void): unknown;
  terminate?(): void;
}

interface HttpResponseLike {
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
}

export const OPEN = 1;

/** The constructor to use: the option, else the global WebSocket. */
export function webSocketConstructor(option: WebSocketConstructor | undefined): WebSocketConstructor {
  if (option) return option;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!global) {
    throw new TypeError(
      'no global WebSocket: pass the `WebSocket` option (in Node 20, the `ws` package: `import WebSocket from "ws"`)',
    );
  }
  return global;
}

function nodeExtras(socket: WebSocketLike): NodeWebSocketExtras | null {
  const candidate = socket as unknown as Partial<NodeWebSocketExtras>;
  return typeof candidate.on === 'function' ? (candidate as NodeWebSocketExtras) : null;
}

/** Calls `listener` on each WebSocket Ping frame, where the socket shows them (not in browsers). */
export function onPingFrame(socket: WebSocketLike, listener: () => void): boolean {
  const extras = nodeExtras(socket);
  if (!extras) return false;
  extras.on('ping', listener);
  return true;
}

/**
 * Where the socket shows a refused upgrade's HTTP answer (`ws`), calls
 * `listener` with its Retry-After in ms (undefined when absent) and aborts
 * the handshake, which then ends in the usual error and close events.
 */
export function onRefusedHandshake(
  socket: WebSocketLike,
  listener: (retryAfterMs: number | undefined, status: number | undefined) => void,
): void {
  const extras = nodeExtras(socket);
  if (!extras) return;
  extras.on('unexpected-response', (_request, response) => {
    listener(parseRetryAfter(response.headers?.['retry-after']), response.statusCode);
    if (extras.terminate) extras.terminate();
    else socket.close();
  });
}

/** An HTTP Retry-After: delay-seconds, or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
