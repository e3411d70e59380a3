// FanfareClient: the connection's life across reconnects (docs/protocol.md
// §13.4), the subscriptions it restores, and the commands of §5 and issue 13.
//
// One attempt: resolve the URL and the token, open a WebSocket, send
// `connect`, then resubscribe every channel with `since` = its position and
// send the commands that waited for a connection. When every resubscribe has
// been answered the connection is "restored" and the backoff counter goes
// back to 0. When the socket closes, the close code (or the `disconnect`
// push, for a socket that ended without a close frame) decides between
// stopping and another attempt after the backoff delay. The command methods
// (publish, history, …) are in commands.ts, over this file's `request`.

import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { CLOSE_UNAUTHORIZED, closeDecision, isAbnormalClose } from './close-codes.js';
import { Connection, type CloseInfo } from './connection.js';
import { Commands } from './commands.js';
import { ClosedError, FanfareError, ProtocolError, TimeoutError } from './errors.js';
import { positionStoreFor, type PositionStore } from './positions.js';
import { webSocketConstructor, type WebSocketConstructor } from './socket.js';
import { Subscription } from './subscription.js';
import type { ConnectResult, JoinPush, LeavePush, Publication, Push, StreamPosition, SubscribeResult } from './wire.js';

export interface ClientOptions {
  /** The WebSocket endpoint, `ws(s)://HOST:PORT/connection/websocket`, or a function called before each attempt. */
  url: string | (() => string | Promise<string>);
  /** A JWT for `connect`. Omit it (and `getToken`) for an anonymous connection. */
  token?: string;
  /**
   * Called before each attempt for the token to send; wins over `token`.
   * After an auth refusal (`unauthorized`, `token_expired`, close 4001) the
   * client asks it again once before it gives up.
   */
  getToken?: () => Promise<string>;
  /** The WebSocket constructor; default the global one (pass `ws`'s in Node 20). */
  WebSocket?: WebSocketConstructor;
  /** Where channel positions are kept: "memory" (default), "sessionStorage", or your own store. */
  positions?: 'memory' | 'sessionStorage' | PositionStore;
  /** Reconnect backoff; defaults 1 s and 30 s as §13.4 recommends. */
  backoff?: BackoffOptions;
  /** How long a command waits for its reply (and for a connection, if there is none yet). Default 10 s. */
  commandTimeoutMs?: number;
  /** How long an attempt may take from opening the socket to the `connect` reply. Default 10 s. */
  connectTimeoutMs?: number;
  /** A number in [0, 1): the backoff's jitter. Default Math.random. */
  random?: () => number;
}

export type ClientState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface ClientEvents {
  state: { state: ClientState; previous: ClientState };
  /** An attempt starts; `attempt` is the backoff counter (0 for the first). */
  connecting: { attempt: number };
  connected: ConnectResult;
  /** Every resubscribe of this connection has been answered. */
  restored: { subscriptions: number };
  /** The connection ended (or an attempt failed) and another attempt follows after `delayMs`. */
  disconnected: { code: number; reason: string; delayMs: number };
  /** The client stopped for good: close(), or the server said not to reconnect. connect() starts it again. */
  closed: { code?: number; reason: string; error?: FanfareError };
  /** Something went wrong that the client handles by itself (a failed attempt, a refused connect). */
  error: Error;
}

export interface SubscribeOptions {
  /** Resume after this position instead of the stored one. */
  since?: StreamPosition;
}

interface WaitingCommand {
  send(connection: Connection): void;
  fail(error: Error): void;
}

/** Unauthorized connects after which getToken is not asked again. */
const MAX_AUTH_REFUSALS = 2;

export class FanfareClient extends Commands {
  private readonly options: ClientOptions;
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly positions: PositionStore;
  private readonly backoff: Required<BackoffOptions>;
  private readonly random: () => number;
  private readonly commandTimeoutMs: number;
  private readonly connectTimeoutMs: number;

  private currentState: ClientState = 'idle';
  private connection: Connection | undefined;
  /** The connection whose `connect` succeeded, while it lasts. */
  private live: Connection | undefined;
  private currentSession: ConnectResult | undefined;
  private attempt = 0;
  /** Bumped by each attempt, so an attempt overtaken by close() and connect() gives up. */
  private generation = 0;
  private authRefusals = 0;
  /** The least wait the server or a failed restore asked for, applied to the next delay. */
  private nextFloorMs = 0;
  private stopReason: { reason: string; error?: FanfareError; code?: number } | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly subscriptions = new Map<string, Subscription>();
  /** The connection each subscription's subscribe was sent on. */
  private readonly sentOn = new Map<Subscription, Connection>();
  private readonly waiting = new Set<WaitingCommand>();
  private readonly connectWaiters = new Set<{ resolve: (r: ConnectResult) => void; reject: (e: Error) => void }>();

  constructor(options: ClientOptions) {
    super();
    this.options = options;
    this.WebSocketImpl = webSocketConstructor(options.WebSocket);
    this.positions = positionStoreFor(options.positions);
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.random = options.random ?? Math.random;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  get state(): ClientState {
    return this.currentState;
  }

  /** The `connect` result of the current connection, while connected. */
  get session(): ConnectResult | undefined {
    return this.currentSession;
  }

  /** The subscription to `channel`, if there is one. */
  subscription(channel: string): Subscription | undefined {
    return this.subscriptions.get(channel);
  }

  // ---------------------------------------------------------------------
  // Lifecycle

  /**
   * Starts connecting (if not already) and resolves with the next `connect`
   * result; rejects if the client stops first. After `closed`, starts again.
   */
  connect(): Promise<ConnectResult> {
    const waiting = new Promise<ConnectResult>((resolve, reject) => {
      if (this.currentState === 'connected' && this.currentSession) {
        resolve(this.currentSession);
        return;
      }
      this.connectWaiters.add({ resolve, reject });
    });
    waiting.catch(() => {}); // a caller that does not await connect() must not see an unhandled rejection
    if (this.currentState === 'idle' || this.currentState === 'closed') {
      this.stopReason = undefined;
      this.attempt = 0;
      this.authRefusals = 0;
      void this.startAttempt();
    }
    return waiting;
  }

  /** Closes the connection and stops reconnecting. Pending commands reject with ClosedError. */
  close(): void {
    this.stop({ reason: 'closed by the client' });
  }

  private async startAttempt(): Promise<void> {
    this.reconnectTimer = undefined;
    const generation = ++this.generation;
    this.setState('connecting');
    this.emit('connecting', { attempt: this.attempt });
    let url: string;
    let token: string | undefined;
    try {
      url = typeof this.options.url === 'function' ? await this.options.url() : this.options.url;
      token = this.options.getToken ? await this.options.getToken() : this.options.token;
    } catch (error) {
      this.emit('error', asError(error));
      if (this.currentState === 'connecting' && generation === this.generation) {
        this.scheduleReconnect(1006, 'getting the URL or token failed');
      }
      return;
    }
    // close() (and perhaps connect() again) was called meanwhile.
    if (this.currentState !== 'connecting' || generation !== this.generation) return;
    let connection: Connection;
    try {
      const socket = new this.WebSocketImpl(url);
      connection = new Connection(socket, {
        onPush: (push) => this.onPush(connection, push),
        onClose: (info) => this.onClose(connection, info),
      });
    } catch (error) {
      this.stop({ reason: `cannot open a WebSocket to ${url}`, error: new ClosedError(asError(error).message) });
      return;
    }
    this.connection = connection;
    await this.handshake(connection, token);
  }

  /** Opens the socket and sends `connect`; on success, restores the subscriptions. */
  private async handshake(connection: Connection, token: string | undefined): Promise<void> {
    const deadline = Date.now() + this.connectTimeoutMs;
    const timer = setTimeout(() => connection.close(1000, 'connect timed out'), this.connectTimeoutMs);
    let result: ConnectResult;
    try {
      await connection.open;
      const fields = token === undefined ? {} : { token };
      result = (await connection.request(
        'connect',
        fields,
        Math.max(1, deadline - Date.now()),
      )) as unknown as ConnectResult;
    } catch (error) {
      if (error instanceof ProtocolError) this.connectRefused(connection, error);
      else if (error instanceof TimeoutError) connection.close(1000, 'connect timed out');
      return; // a closed socket is handled by onClose
    } finally {
      clearTimeout(timer);
    }
    if (connection !== this.connection) return;
    this.live = connection;
    this.currentSession = result;
    this.authRefusals = 0;
    this.setState('connected');
    connection.startHeartbeat(result.ping_interval_ms, () => this.reconnectNow(connection, 'heartbeat timeout'));
    for (const waiter of this.connectWaiters) waiter.resolve(result);
    this.connectWaiters.clear();
    this.emit('connected', result);
    const restores = [...this.subscriptions.values()].map((sub) => this.sendSubscribe(connection, sub));
    for (const command of [...this.waiting]) {
      this.waiting.delete(command);
      command.send(connection);
    }
    const outcomes = await Promise.all(restores);
    if (connection === this.live && outcomes.every((ok) => ok)) {
      this.attempt = 0;
      this.emit('restored', { subscriptions: outcomes.length });
    }
  }

  /** `connect` answered with an error (§2.1, §13.4 "When to stop"). */
  private connectRefused(connection: Connection, error: ProtocolError): void {
    this.emit('error', error);
    const auth = error.code === 'unauthorized' || error.code === 'token_expired';
    if (auth && this.options.getToken && ++this.authRefusals < MAX_AUTH_REFUSALS) {
      this.reconnectNow(connection, 'asking getToken for a new token');
      return;
    }
    // too_many_connections says retry, but its close 4004 says not by itself.
    if (!error.retry || error.code === 'too_many_connections') {
      this.stop({ reason: `connect refused: ${error.code}`, error, code: auth ? CLOSE_UNAUTHORIZED : undefined });
      return;
    }
    this.reconnectNow(connection, `connect refused: ${error.code}`, error.retryAfterMs);
  }

  /** Closes `connection` from this side, then reconnects with backoff. */
  private reconnectNow(connection: Connection, reason: string, floorMs = 0): void {
    if (connection !== this.connection) return;
    this.nextFloorMs = Math.max(this.nextFloorMs, floorMs);
    connection.close(1000, reason);
  }

  private onClose(connection: Connection, info: CloseInfo): void {
    if (connection !== this.connection) return;
    this.connection = undefined;
    this.live = undefined;
    this.currentSession = undefined;
    for (const sub of this.subscriptions.values()) sub.markSubscribing();
    this.sentOn.clear();
    if (this.currentState === 'closed') return;
    const stop = this.stopVerdict(info);
    if (stop) {
      this.stop({ reason: stop, code: info.code, error: new ClosedError(stop) });
      return;
    }
    const floor = Math.max(info.disconnect?.reconnect_after_ms ?? 0, info.retryAfterMs ?? 0);
    this.nextFloorMs = Math.max(this.nextFloorMs, floor);
    this.scheduleReconnect(info.code, info.reason);
  }

  /** Why not to reconnect after `info`, or undefined to reconnect (§13.4). */
  private stopVerdict(info: CloseInfo): string | undefined {
    if (info.byClient) return undefined;
    const push = info.disconnect;
    if (isAbnormalClose(info.code)) {
      return push && !push.reconnect ? `disconnected by the server: ${push.reason} (${push.code})` : undefined;
    }
    if (closeDecision(info.code) === 'reconnect') return undefined;
    if (info.code === CLOSE_UNAUTHORIZED && this.options.getToken && ++this.authRefusals < MAX_AUTH_REFUSALS) {
      return undefined;
    }
    return `closed by the server with ${info.code}${info.reason ? ` (${info.reason})` : ''}`;
  }

  private scheduleReconnect(code: number, reason: string): void {
    this.attempt += 1;
    const delayMs = backoffDelay(this.attempt, this.backoff, this.random, this.nextFloorMs);
    this.nextFloorMs = 0;
    this.setState('disconnected');
    this.emit('disconnected', { code, reason, delayMs });
    this.reconnectTimer = setTimeout(() => void this.startAttempt(), delayMs);
  }

  private stop(why: { reason: string; error?: FanfareError; code?: number }): void {
    if (this.currentState === 'closed') return;
    this.stopReason = why;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.setState('closed');
    const connection = this.connection;
    this.connection = undefined;
    this.live = undefined;
    this.currentSession = undefined;
    connection?.close(1000, why.reason);
    for (const sub of this.subscriptions.values()) sub.markSubscribing();
    this.sentOn.clear();
    const error = why.error ?? new ClosedError(why.reason);
    for (const command of this.waiting) command.fail(error);
    this.waiting.clear();
    for (const waiter of this.connectWaiters) waiter.reject(error);
    this.connectWaiters.clear();
    const event: ClientEvents['closed'] = { reason: why.reason };
    if (why.code !== undefined) event.code = why.code;
    if (why.error !== undefined) event.error = why.error;
    this.emit('closed', event);
  }

  private setState(state: ClientState): void {
    const previous = this.currentState;
    if (previous === state) return;
    this.currentState = state;
    this.emit('state', { state, previous });
  }

  // ---------------------------------------------------------------------
  // Pushes

  private onPush(connection: Connection, push: Push): void {
    if (connection !== this.live) return;
    const channel = (push as { channel?: unknown }).channel;
    if (typeof channel !== 'string') return; // `disconnect`, or a push type of a newer server
    const sub = this.subscriptions.get(channel);
    // Pushes of a channel not (or not yet) subscribed on this connection are ignored (§5.3).
    if (!sub || sub.state !== 'subscribed' || this.sentOn.get(sub) !== connection) return;
    if (push.type === 'publication') sub.applyPublication(push as unknown as Publication);
    else if (push.type === 'join') sub.applyPresence('join', withoutType(push as JoinPush));
    else if (push.type === 'leave') sub.applyPresence('leave', withoutType(push as LeavePush));
  }

  // ---------------------------------------------------------------------
  // Subscriptions

  /**
   * Subscribes to `channel`, now if connected, else once connected, and
   * again after every reconnect with `since` = its position. Throws if the
   * channel already has a subscription.
   */
  subscribe(channel: string, options: SubscribeOptions = {}): Subscription {
    if (this.subscriptions.has(channel)) {
      throw new FanfareError('already_subscribed', `already subscribed to ${channel}`, false);
    }
    if (options.since) this.positions.set(channel, options.since);
    const sub = new Subscription(channel, { unsubscribe: (s) => this.unsubscribe(s) }, this.positions);
    this.subscriptions.set(channel, sub);
    if (this.live) void this.sendSubscribe(this.live, sub);
    return sub;
  }

  /**
   * Sends one subscribe and applies its reply. Resolves true when the
   * subscription is settled (subscribed, or refused for good), false when
   * the attempt failed and the connection is being replaced.
   */
  private async sendSubscribe(connection: Connection, sub: Subscription): Promise<boolean> {
    const since = sub.since();
    const fields: Record<string, unknown> = { channel: sub.channel };
    if (since) fields.since = { epoch: since.epoch, offset: since.offset };
    this.sentOn.set(sub, connection);
    try {
      await connection.request('subscribe', fields, this.commandTimeoutMs, (result) => {
        if (this.subscriptions.get(sub.channel) === sub && this.sentOn.get(sub) === connection) {
          sub.applySubscribeReply(result as unknown as SubscribeResult, since);
        }
      });
      return true;
    } catch (error) {
      if (error instanceof ProtocolError && !error.retry) {
        if (this.subscriptions.get(sub.channel) === sub) {
          this.subscriptions.delete(sub.channel);
          this.sentOn.delete(sub);
          sub.applyRefusal(error);
        }
        return true;
      }
      const floor = error instanceof ProtocolError ? error.retryAfterMs : undefined;
      this.reconnectNow(connection, `subscribe to ${sub.channel} failed`, floor);
      return false;
    }
  }

  private async unsubscribe(sub: Subscription): Promise<void> {
    if (this.subscriptions.get(sub.channel) !== sub) return;
    const connection = this.sentOn.get(sub);
    this.subscriptions.delete(sub.channel);
    this.sentOn.delete(sub);
    sub.applyUnsubscribe();
    if (!connection || connection !== this.live) return;
    try {
      await connection.request('unsubscribe', { channel: sub.channel }, this.commandTimeoutMs);
    } catch (error) {
      // Not subscribed there, or the connection is gone: either way it is over.
      if (error instanceof ProtocolError && error.code !== 'not_subscribed') throw error;
    }
  }

  // ---------------------------------------------------------------------
  // Commands

  /**
   * Sends any command and resolves with its `result`: the escape hatch for
   * commands this version has no method for. Without a connection it waits
   * for one, within the same timeout.
   */
  request<T = Record<string, unknown>>(
    type: string,
    fields: Record<string, unknown> = {},
    timeoutMs = this.commandTimeoutMs,
  ): Promise<T> {
    if (this.currentState === 'closed') {
      return Promise.reject(
        this.stopReason?.error ?? new ClosedError(this.stopReason?.reason ?? 'the client is closed'),
      );
    }
    if (this.live) return this.live.request(type, fields, timeoutMs) as Promise<T>;
    const deadline = Date.now() + timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const command: WaitingCommand = {
        send: (connection) => {
          clearTimeout(timer);
          connection.request(type, fields, Math.max(1, deadline - Date.now())).then((r) => resolve(r as T), reject);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiting.delete(command);
        reject(new TimeoutError(type, timeoutMs));
      }, timeoutMs);
      this.waiting.add(command);
    });
  }
}

function withoutType<T extends { type: string }>(push: T): Omit<T, 'type' | 'channel'> {
  const { type: _type, channel: _channel, ...rest } = push as T & { channel?: string };
  return rest;
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
