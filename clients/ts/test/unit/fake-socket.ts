// A scripted stand-in for the server's end of a WebSocket: each socket the
// client opens is recorded, and the test opens it, reads the commands the
// client sent and answers with frames, as the server would.

import type { WebSocketConstructor, WebSocketLike } from '../../src/socket.js';

export type Frame = Record<string, unknown>;

export class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: Frame[] = [];
  closedByClient: { code: number | undefined; reason: string | undefined } | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  private readonly sentListeners = new Set<() => void>();

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data) as Frame);
    for (const listener of [...this.sentListeners]) listener();
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  // --- the server's side -------------------------------------------------

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** Sends one frame to the client (an object is JSON-encoded). */
  deliver(frame: Frame | string): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
  }

  reply(command: Frame, result: Frame = {}): void {
    this.deliver({ id: command.id, result });
  }

  fail(command: Frame, code: string, retry: boolean, extra: Frame = {}): void {
    this.deliver({ id: command.id, error: { code, message: `${code} (fake)`, retry, ...extra } });
  }

  /** The server closes the connection with `code` (1006: the socket just ended). */
  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** The commands of `type` sent so far. */
  commands(type: string): Frame[] {
    return this.sent.filter((frame) => frame.type === type);
  }

  /** The last command of `type`; throws if there is none. */
  last(type: string): Frame {
    const found = this.commands(type);
    if (found.length === 0) throw new Error(`no ${type} command was sent; sent: ${JSON.stringify(this.sent)}`);
    return found[found.length - 1]!;
  }

  /** Resolves with the next command of `type` not yet returned by this method for that type. */
  next(type: string): Promise<Frame> {
    const seen = (this.taken.get(type) ?? 0) as number;
    return new Promise((resolve) => {
      const check = () => {
        const found = this.commands(type);
        if (found.length > seen) {
          this.sentListeners.delete(check);
          this.taken.set(type, seen + 1);
          resolve(found[seen]!);
        }
      };
      this.sentListeners.add(check);
      check();
    });
  }

  private readonly taken = new Map<string, number>();
}

/** Records every socket a client opens; `WebSocket` is the constructor to give the client. */
export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  private readonly listeners = new Set<() => void>();
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    const server = this;
    this.WebSocket = class extends FakeSocket {
      constructor(url: string) {
        super(url);
        server.sockets.push(this);
        for (const listener of [...server.listeners]) listener();
      }
    };
  }

  get current(): FakeSocket {
    const socket = this.sockets[this.sockets.length - 1];
    if (!socket) throw new Error('the client opened no socket');
    return socket;
  }

  /** Resolves with the n-th socket (counting from 1) once the client has opened it. */
  socket(n: number): Promise<FakeSocket> {
    return new Promise((resolve) => {
      const check = () => {
        const socket = this.sockets[n - 1];
        if (socket) {
          this.listeners.delete(check);
          resolve(socket);
        }
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Opens socket n and answers its `connect`; resolves with the socket. */
  async accept(n: number, result: Frame = {}): Promise<FakeSocket> {
    const socket = await this.socket(n);
    socket.open();
    const connect = await socket.next('connect');
    socket.reply(connect, { client: String(n), user: 'alice', version: 'fake', ping_interval_ms: 25_000, ...result });
    return socket;
  }
}
