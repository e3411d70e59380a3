// One WebSocket's life, from open to close: commands out with their ids,
// replies matched back to them by id (§3.2), pushes handed up, and the
// heartbeat of §12 (a dead connection is one that was silent longer than
// 2 × ping_interval_ms + 5 s; when idle for ping_interval_ms the client sends
// a `ping` command, which browsers need because they cannot see Ping frames).
// Reconnecting is not its business: FanfareClient makes a new Connection.

import { DisconnectedError, ProtocolError, TimeoutError } from './errors.js';
import { onPingFrame, onRefusedHandshake, OPEN, type WebSocketLike } from './socket.js';
import { decodeFrame, encodeCommand, type DisconnectPush, type Push } from './wire.js';

/** How a connection ended. */
export interface CloseInfo {
  /** The close code; 1006 when the socket ended without a close frame. */
  code: number;
  reason: string;
  /** The client closed it (close(), a heartbeat timeout, a failed restore). */
  byClient: boolean;
  /** Whether the socket had opened. */
  opened: boolean;
  /** The `disconnect` push that came before the close, if any (§6.4). */
  disconnect?: DisconnectPush;
  /** A refused handshake's Retry-After, in ms (Node with `ws` only). */
  retryAfterMs?: number;
  /** A refused handshake's HTTP status (Node with `ws` only). */
  httpStatus?: number;
}

export interface ConnectionHooks {
  onPush(push: Push): void;
  onClose(info: CloseInfo): void;
}

interface Pending {
  command: string;
  onResult: ((result: Record<string, unknown>) => void) | undefined;
  resolve: (result: Record<string, unknown>) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** 2 × ping_interval_ms + this is the silence after which the connection is dead (§12). */
const LIVENESS_MARGIN_MS = 5000;

export class Connection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private opened = false;
  private closed = false;
  private disconnect: DisconnectPush | undefined;
  private refused: { retryAfterMs: number | undefined; status: number | undefined } | undefined;
  private lastFrameAt = Date.now();
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private readonly openPromise: Promise<void>;
  private settleOpen!: { resolve: () => void; reject: (e: Error) => void };

  constructor(
    private readonly socket: WebSocketLike,
    private readonly hooks: ConnectionHooks,
  ) {
    this.openPromise = new Promise<void>((resolve, reject) => {
      this.settleOpen = { resolve, reject };
    });
    this.openPromise.catch(() => {});
    socket.onopen = () => {
      this.opened = true;
      this.lastFrameAt = Date.now();
      this.settleOpen.resolve();
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.finish(event.code, event.reason ?? '', false);
    socket.onerror = () => {
      // Always followed by a close event, which carries what there is to know.
    };
    onPingFrame(socket, () => this.markAlive());
    onRefusedHandshake(socket, (retryAfterMs, status) => {
      this.refused = { retryAfterMs, status };
    });
  }

  /** Resolves once the socket is open; rejects if it closes first. */
  get open(): Promise<void> {
    return this.openPromise;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Sends a command and resolves with its `result`, or rejects with a
   * ProtocolError (an error reply), a TimeoutError, or a DisconnectedError.
   * `onResult` runs synchronously when the result arrives, before any frame
   * after it is handled: `ws` delivers the frames of one TCP read in one go,
   * and a subscribe's replayed publications must meet a subscription that
   * already took its reply, which an `await` would only do a microtask later.
   */
  request(
    type: string,
    fields: Record<string, unknown>,
    timeoutMs: number,
    onResult?: (result: Record<string, unknown>) => void,
  ): Promise<Record<string, unknown>> {
    if (this.closed || this.socket.readyState !== OPEN) return Promise.reject(new DisconnectedError(type));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(type, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { command: type, onResult, resolve, reject, timer });
      try {
        this.socket.send(encodeCommand(id, type, fields));
      } catch {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new DisconnectedError(type));
      }
    });
  }

  /**
   * Watches for silence (§12) once `connect` has told the ping interval.
   * `onDead` runs when nothing arrived for 2 × pingIntervalMs + 5 s.
   */
  startHeartbeat(pingIntervalMs: number, onDead: () => void): void {
    if (this.closed || !(pingIntervalMs > 0)) return;
    const deadAfter = 2 * pingIntervalMs + LIVENESS_MARGIN_MS;
    // Checking a few times per interval keeps the detection within a quarter
    // of it without a timer per frame.
    const tick = Math.max(250, Math.floor(pingIntervalMs / 4));
    let pingSentAt = 0;
    this.heartbeat = setInterval(() => {
      const silence = Date.now() - this.lastFrameAt;
      if (silence > deadAfter) {
        onDead();
        return;
      }
      if (silence >= pingIntervalMs && Date.now() - pingSentAt >= pingIntervalMs) {
        pingSentAt = Date.now();
        this.request('ping', {}, deadAfter).catch(() => {});
      }
    }, tick);
  }

  /** Closes from the client side; the close is reported at once, not when the socket confirms it. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    const socket = this.socket as WebSocketLike & { terminate?: () => void };
    try {
      if (this.opened || typeof socket.terminate !== 'function') socket.close(code, reason);
      else socket.terminate();
    } catch {
      // A socket that cannot even close is as closed as it gets.
    }
    this.finish(code, reason, true);
  }

  private markAlive(): void {
    this.lastFrameAt = Date.now();
  }

  private receive(data: unknown): void {
    this.markAlive();
    if (typeof data !== 'string') return; // the server sends only text frames
    const incoming = decodeFrame(data);
    if (!incoming) return;
    if (incoming.kind === 'push') {
      if (incoming.push.type === 'disconnect') this.disconnect = incoming.push as DisconnectPush;
      this.hooks.onPush(incoming.push);
      return;
    }
    const { reply } = incoming;
    const pending = this.pending.get(reply.id);
    if (!pending) return; // timed out already, or not ours
    this.pending.delete(reply.id);
    clearTimeout(pending.timer);
    if ('error' in reply) {
      pending.reject(new ProtocolError(pending.command, reply.error));
      return;
    }
    try {
      pending.onResult?.(reply.result);
    } catch (error) {
      pending.reject(error as Error);
      return;
    }
    pending.resolve(reply.result);
  }

  private finish(code: number, reason: string, byClient: boolean): void {
    if (this.closed) return;
    this.closed = true;
    // No-op once open; before, whoever awaits `open` learns it never will.
    this.settleOpen.reject(new Error(`the WebSocket closed before it opened (code ${code})`));
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.socket.onopen = null;
    this.socket.onmessage = null;
    this.socket.onclose = null;
    this.socket.onerror = () => {};
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new DisconnectedError(pending.command));
    }
    const info: CloseInfo = { code, reason, byClient, opened: this.opened };
    if (this.disconnect) info.disconnect = this.disconnect;
    if (this.refused?.retryAfterMs !== undefined) info.retryAfterMs = this.refused.retryAfterMs;
    if (this.refused?.status !== undefined) info.httpStatus = this.refused.status;
    this.hooks.onClose(info);
  }
}
