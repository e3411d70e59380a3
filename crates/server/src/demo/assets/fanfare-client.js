// @fanfare/client, bundled for the demo pages by clients/ts/scripts/bundle-demo.mjs.
// Generated: do not edit; run `npm run bundle:demo` in clients/ts after changing the client.

// src/backoff.ts
var DEFAULT_BACKOFF = { baseMs: 1e3, maxMs: 3e4 };
function backoffCeiling(attempt, options) {
  const exponent = Math.max(0, attempt - 1);
  return Math.min(options.baseMs * 2 ** exponent, options.maxMs);
}
function backoffDelay(attempt, options, random, serverFloorMs = 0) {
  const factor = random();
  const jittered = Math.round(backoffCeiling(attempt, options) * factor);
  return Math.max(jittered, serverFloorMs);
}

// src/close-codes.ts
var STOP_STANDARD_CODES = /* @__PURE__ */ new Set([1002, 1007, 1009]);
var CLOSE_UNAUTHORIZED = 4001;
function closeDecision(code) {
  if (code >= 4e3 && code <= 4499) return "stop";
  if (code >= 4500 && code <= 4999) return "reconnect";
  if (STOP_STANDARD_CODES.has(code)) return "stop";
  return "reconnect";
}
function isAbnormalClose(code) {
  return code === 1005 || code === 1006;
}

// src/errors.ts
var PROTOCOL_ERROR_CODES = [
  "bad_request",
  "unknown_command",
  "invalid_channel",
  "message_too_large",
  "unauthorized",
  "token_expired",
  "permission_denied",
  "not_connected",
  "already_connected",
  "already_subscribed",
  "not_subscribed",
  "too_many_channels",
  "rate_limited",
  "slow_mode",
  "too_many_connections",
  "banned",
  "muted",
  "content_rejected",
  "not_found",
  "not_available",
  "unavailable",
  "shutting_down",
  "internal",
  "too_many_members",
  "too_many_memberships",
  "unknown"
];
var FanfareError = class extends Error {
  code;
  /** Whether the same command could succeed later unchanged. */
  retry;
  constructor(code, message, retry) {
    super(message);
    this.name = "FanfareError";
    this.code = code;
    this.retry = retry;
  }
};
var ProtocolError = class extends FanfareError {
  /** The code exactly as the server sent it. */
  wireCode;
  /** The least wait before the same command can succeed, when the server knows it. */
  retryAfterMs;
  /** The command that failed (`publish`, `subscribe`, …). */
  command;
  constructor(command, error) {
    const known = PROTOCOL_ERROR_CODES.includes(error.code);
    super(known ? error.code : "unknown", error.message ?? error.code, error.retry === true);
    this.name = "ProtocolError";
    this.wireCode = error.code;
    this.retryAfterMs = typeof error.retry_after_ms === "number" ? error.retry_after_ms : void 0;
    this.command = command;
  }
};
var TimeoutError = class extends FanfareError {
  command;
  constructor(command, timeoutMs) {
    super("timeout", `no reply to ${command} within ${timeoutMs} ms`, true);
    this.name = "TimeoutError";
    this.command = command;
  }
};
var DisconnectedError = class extends FanfareError {
  command;
  constructor(command) {
    super("disconnected", `the connection ended before the reply to ${command}`, true);
    this.name = "DisconnectedError";
    this.command = command;
  }
};
var ClosedError = class extends FanfareError {
  constructor(message) {
    super("closed", message, false);
    this.name = "ClosedError";
  }
};

// src/socket.ts
var OPEN = 1;
function webSocketConstructor(option) {
  if (option) return option;
  const global = globalThis.WebSocket;
  if (!global) {
    throw new TypeError(
      'no global WebSocket: pass the `WebSocket` option (in Node 20, the `ws` package: `import WebSocket from "ws"`)'
    );
  }
  return global;
}
function nodeExtras(socket) {
  const candidate = socket;
  return typeof candidate.on === "function" ? candidate : null;
}
function onPingFrame(socket, listener) {
  const extras = nodeExtras(socket);
  if (!extras) return false;
  extras.on("ping", listener);
  return true;
}
function onRefusedHandshake(socket, listener) {
  const extras = nodeExtras(socket);
  if (!extras) return;
  extras.on("unexpected-response", (_request, response) => {
    listener(parseRetryAfter(response.headers?.["retry-after"]), response.statusCode);
    if (extras.terminate) extras.terminate();
    else socket.close();
  });
}
function parseRetryAfter(value, now = Date.now()) {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === void 0 || text.trim() === "") return void 0;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1e3;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return void 0;
  return Math.max(0, date - now);
}

// src/wire.ts
function decodeFrame(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const message = value;
  if (typeof message.id === "number") {
    if (isWireError(message.error)) return { kind: "reply", reply: { id: message.id, error: message.error } };
    const result = typeof message.result === "object" && message.result !== null ? message.result : {};
    return { kind: "reply", reply: { id: message.id, result } };
  }
  if (typeof message.type === "string") return { kind: "push", push: message };
  return null;
}
function isWireError(value) {
  if (typeof value !== "object" || value === null) return false;
  const error = value;
  return typeof error.code === "string";
}
function encodeCommand(id, type, fields) {
  const command = { id, type };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== void 0) command[key] = value;
  }
  return JSON.stringify(command);
}

// src/connection.ts
var LIVENESS_MARGIN_MS = 5e3;
var Connection = class {
  constructor(socket, hooks) {
    this.socket = socket;
    this.hooks = hooks;
    this.openPromise = new Promise((resolve, reject) => {
      this.settleOpen = { resolve, reject };
    });
    this.openPromise.catch(() => {
    });
    socket.onopen = () => {
      this.opened = true;
      this.lastFrameAt = Date.now();
      this.settleOpen.resolve();
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.finish(event.code, event.reason ?? "", false);
    socket.onerror = () => {
    };
    onPingFrame(socket, () => this.markAlive());
    onRefusedHandshake(socket, (retryAfterMs, status) => {
      this.refused = { retryAfterMs, status };
    });
  }
  socket;
  hooks;
  nextId = 1;
  pending = /* @__PURE__ */ new Map();
  opened = false;
  closed = false;
  disconnect;
  refused;
  lastFrameAt = Date.now();
  heartbeat;
  openPromise;
  settleOpen;
  /** Resolves once the socket is open; rejects if it closes first. */
  get open() {
    return this.openPromise;
  }
  get isClosed() {
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
  request(type, fields, timeoutMs, onResult) {
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
  startHeartbeat(pingIntervalMs, onDead) {
    if (this.closed || !(pingIntervalMs > 0)) return;
    const deadAfter = 2 * pingIntervalMs + LIVENESS_MARGIN_MS;
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
        this.request("ping", {}, deadAfter).catch(() => {
        });
      }
    }, tick);
  }
  /** Closes from the client side; the close is reported at once, not when the socket confirms it. */
  close(code, reason) {
    if (this.closed) return;
    const socket = this.socket;
    try {
      if (this.opened || typeof socket.terminate !== "function") socket.close(code, reason);
      else socket.terminate();
    } catch {
    }
    this.finish(code, reason, true);
  }
  markAlive() {
    this.lastFrameAt = Date.now();
  }
  receive(data) {
    this.markAlive();
    if (typeof data !== "string") return;
    const incoming = decodeFrame(data);
    if (!incoming) return;
    if (incoming.kind === "push") {
      if (incoming.push.type === "disconnect") this.disconnect = incoming.push;
      this.hooks.onPush(incoming.push);
      return;
    }
    const { reply } = incoming;
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    clearTimeout(pending.timer);
    if ("error" in reply) {
      pending.reject(new ProtocolError(pending.command, reply.error));
      return;
    }
    try {
      pending.onResult?.(reply.result);
    } catch (error) {
      pending.reject(error);
      return;
    }
    pending.resolve(reply.result);
  }
  finish(code, reason, byClient) {
    if (this.closed) return;
    this.closed = true;
    this.settleOpen.reject(new Error(`the WebSocket closed before it opened (code ${code})`));
    if (this.heartbeat !== void 0) clearInterval(this.heartbeat);
    this.socket.onopen = null;
    this.socket.onmessage = null;
    this.socket.onclose = null;
    this.socket.onerror = () => {
    };
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new DisconnectedError(pending.command));
    }
    const info = { code, reason, byClient, opened: this.opened };
    if (this.disconnect) info.disconnect = this.disconnect;
    if (this.refused?.retryAfterMs !== void 0) info.retryAfterMs = this.refused.retryAfterMs;
    if (this.refused?.status !== void 0) info.httpStatus = this.refused.status;
    this.hooks.onClose(info);
  }
};

// src/emitter.ts
var Emitter = class {
  listeners = /* @__PURE__ */ new Map();
  /** Calls `listener` on every `name` event until the returned function is called. */
  on(name, listener) {
    let set = this.listeners.get(name);
    if (!set) {
      set = /* @__PURE__ */ new Set();
      this.listeners.set(name, set);
    }
    set.add(listener);
    return () => this.off(name, listener);
  }
  /** Calls `listener` on the next `name` event only. */
  once(name, listener) {
    const off = this.on(name, (event) => {
      off();
      listener(event);
    });
    return off;
  }
  off(name, listener) {
    this.listeners.get(name)?.delete(listener);
  }
  /** Whether anyone listens to `name`. */
  listens(name) {
    return (this.listeners.get(name)?.size ?? 0) > 0;
  }
  emit(name, event) {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch (error) {
        setTimeout(() => {
          throw error;
        }, 0);
      }
    }
  }
};

// src/commands.ts
var Commands = class extends Emitter {
  /** Publishes `data` (not null) to `channel` (§5.4). Ephemeral publications resolve with `{}`. */
  publish(channel, data, options = {}) {
    return this.request(
      "publish",
      { channel, event: options.event, data, idempotency_key: options.idempotencyKey, ephemeral: options.ephemeral },
      options.timeoutMs
    );
  }
  /** Reads stored publications (§5.5). */
  history(channel, options = {}) {
    return this.request(
      "history",
      { channel, since: options.since, limit: options.limit, reverse: options.reverse },
      options.timeoutMs
    );
  }
  /** The users present in `channel` (§5.6). */
  presence(channel, timeoutMs) {
    return this.request("presence", { channel }, timeoutMs);
  }
  /** An application-level round trip (§5.7); resolves with the time it took in ms. */
  async ping(timeoutMs) {
    const started = Date.now();
    await this.request("ping", {}, timeoutMs);
    return Date.now() - started;
  }
  /** A reaction in a shaped namespace (§5.9); the counts come as `reactions` events. */
  async react(channel, reaction, timeoutMs) {
    await this.request("react", { channel, reaction }, timeoutMs);
  }
  /** A moderator's action (§5.8): `action` and its fields, as the protocol names them. */
  moderate(fields, timeoutMs) {
    return this.request("moderate", fields, timeoutMs);
  }
  /** One page of a members channel's members, ordered; pass `next` as `after` for the next page. */
  members(channel, options = {}) {
    return this.request(
      "members",
      { channel, action: "list", after: options.after, limit: options.limit },
      options.timeoutMs
    );
  }
  /** Adds members (namespaces with `manage_members = "grant"` and a `members` claim). */
  addMembers(channel, users, timeoutMs) {
    return this.request("members", { channel, action: "add", users }, timeoutMs);
  }
  removeMembers(channel, users, timeoutMs) {
    return this.request("members", { channel, action: "remove", users }, timeoutMs);
  }
  /** Moves this user's read cursor in `channel` to `position`. */
  read(channel, position, timeoutMs) {
    return this.request("read", { channel, epoch: position.epoch, offset: position.offset }, timeoutMs);
  }
  /** Tells the channel's other subscribers this user has received up to `position`. */
  async delivered(channel, position, timeoutMs) {
    await this.request("delivered", { channel, epoch: position.epoch, offset: position.offset }, timeoutMs);
  }
  /** This user's channels with their unread counts, a page at a time. */
  unread(options = {}) {
    return this.request("unread", { after: options.after, limit: options.limit }, options.timeoutMs);
  }
  /** Says this user is typing in `channel`; throttled by the server, so call it on each keystroke. */
  async typing(channel, timeoutMs) {
    await this.request("typing", { channel }, timeoutMs);
  }
  /** Replaces the data of publication `offset` (its author, or a moderator). */
  edit(channel, offset, data, timeoutMs) {
    return this.request("edit", { channel, offset, data }, timeoutMs);
  }
  /** Deletes publication `offset` (its author, or a moderator). */
  delete(channel, offset, timeoutMs) {
    return this.request("delete", { channel, offset }, timeoutMs);
  }
};

// src/positions.ts
var MemoryPositions = class {
  positions = /* @__PURE__ */ new Map();
  get(channel) {
    const position = this.positions.get(channel);
    return position && { ...position };
  }
  set(channel, position) {
    this.positions.set(channel, { epoch: position.epoch, offset: position.offset });
  }
  delete(channel) {
    this.positions.delete(channel);
  }
};
var StoragePositions = class {
  constructor(storage, prefix = "fanfare:position:") {
    this.storage = storage;
    this.prefix = prefix;
  }
  storage;
  prefix;
  memory = new MemoryPositions();
  get(channel) {
    const held = this.memory.get(channel);
    if (held) return held;
    const stored = this.read(channel);
    if (stored) this.memory.set(channel, stored);
    return stored;
  }
  set(channel, position) {
    this.memory.set(channel, position);
    try {
      this.storage.setItem(this.prefix + channel, JSON.stringify({ epoch: position.epoch, offset: position.offset }));
    } catch {
    }
  }
  delete(channel) {
    this.memory.delete(channel);
    try {
      this.storage.removeItem(this.prefix + channel);
    } catch {
    }
  }
  read(channel) {
    let text;
    try {
      text = this.storage.getItem(this.prefix + channel);
    } catch {
      return void 0;
    }
    if (!text) return void 0;
    try {
      const value = JSON.parse(text);
      if (isPosition(value)) return { epoch: value.epoch, offset: value.offset };
    } catch {
    }
    return void 0;
  }
};
function isPosition(value) {
  if (typeof value !== "object" || value === null) return false;
  const v = value;
  return typeof v.epoch === "string" && Number.isSafeInteger(v.offset) && v.offset >= 0;
}
function positionStoreFor(option) {
  if (option === void 0 || option === "memory") return new MemoryPositions();
  if (option === "sessionStorage") {
    const storage = globalThis.sessionStorage;
    if (!storage) throw new TypeError('positions: "sessionStorage" needs a global sessionStorage (a browser)');
    return new StoragePositions(storage);
  }
  return option;
}

// src/subscription.ts
var Subscription = class extends Emitter {
  /** Made by FanfareClient.subscribe; not meant to be called directly. */
  constructor(channel, owner, positions) {
    super();
    this.owner = owner;
    this.positions = positions;
    this.channel = channel;
    this.readyPromise = new Promise((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    this.readyPromise.catch(() => {
    });
  }
  owner;
  positions;
  channel;
  currentState = "subscribing";
  subscribedOnce = false;
  readyPromise;
  settleReady;
  get state() {
    return this.currentState;
  }
  /** The last durable publication processed, if any. */
  get position() {
    return this.positions.get(this.channel);
  }
  /** Resolves on the first `subscribed`; rejects if it is refused or unsubscribed first. */
  get ready() {
    return this.readyPromise;
  }
  unsubscribe() {
    return this.owner.unsubscribe(this);
  }
  /** @internal The connection dropped: a resubscribe will follow. */
  markSubscribing() {
    if (this.currentState === "subscribed") this.currentState = "subscribing";
  }
  /** @internal The `since` to send with the next subscribe. */
  since() {
    return this.positions.get(this.channel);
  }
  /** @internal Rules 2 and 3 of the module comment. */
  applySubscribeReply(result, since) {
    const reply = { epoch: result.epoch, offset: result.offset };
    const resubscribed = this.subscribedOnce;
    this.currentState = "subscribed";
    this.subscribedOnce = true;
    if (since === void 0) {
      this.positions.set(this.channel, reply);
    } else if (result.recovered !== true) {
      this.positions.set(this.channel, reply);
      this.emit("notRecovered", { channel: this.channel, reason: "recovery_failed", previous: since, position: reply });
    }
    const event = { channel: this.channel, epoch: result.epoch, offset: result.offset, resubscribed };
    if (result.recovered !== void 0) event.recovered = result.recovered;
    this.emit("subscribed", event);
    this.settleReady.resolve(event);
  }
  /** @internal The server refused the subscribe for good (`retry: false`). */
  applyRefusal(error) {
    this.currentState = "unsubscribed";
    this.emit("error", error);
    this.emit("unsubscribed", { channel: this.channel, reason: "refused", error });
    this.settleReady.reject(error);
  }
  /** @internal unsubscribe() was called. */
  applyUnsubscribe() {
    if (this.currentState === "unsubscribed") return;
    this.currentState = "unsubscribed";
    this.positions.delete(this.channel);
    this.emit("unsubscribed", { channel: this.channel, reason: "client" });
    this.settleReady.reject(new Error(`unsubscribed from ${this.channel} before the subscribe was answered`));
  }
  /** @internal A publication push of this channel (rules 4–6), then routing. */
  applyPublication(publication) {
    if (publication.epoch !== void 0 && publication.offset !== void 0) {
      if (!this.advance({ epoch: publication.epoch, offset: publication.offset })) return;
    }
    this.route(publication);
  }
  /** @internal A `join` or `leave` push of this channel. */
  applyPresence(kind, event) {
    this.emit(kind, event);
  }
  /** Rules 4–6; false for a duplicate. */
  advance(next) {
    const held = this.positions.get(this.channel);
    if (held && held.epoch === next.epoch && next.offset <= held.offset) return false;
    this.positions.set(this.channel, next);
    if (held && held.epoch !== next.epoch) {
      this.emit("notRecovered", { channel: this.channel, reason: "epoch_changed", previous: held, position: next });
    }
    return true;
  }
  route(publication) {
    if (publication.deletes !== void 0) {
      this.emit("delete", { offsets: publication.deletes, publication });
      return;
    }
    if (publication.deleted === true) {
      this.emit("tombstone", publication);
      return;
    }
    if (publication.updates !== void 0) {
      this.emit("update", { target: publication.updates, data: publication.data, publication });
      return;
    }
    if (!this.routeServerEvent(publication)) this.emit("publication", publication);
  }
  /** The `fanfare:*` events of issue 13 and shaped namespaces; false if it is none of them. */
  routeServerEvent(publication) {
    const data = publication.data;
    if (typeof data !== "object" || data === null || Array.isArray(data)) return false;
    const fields = data;
    switch (publication.event) {
      case "fanfare:members":
        this.emit("members", { ...fields, publication });
        return true;
      case "fanfare:read":
        this.emit("read", { ...fields, publication });
        return true;
      case "fanfare:delivered":
        this.emit("delivered", { ...fields, publication });
        return true;
      case "fanfare:typing":
        this.emit("typing", { ...fields, publication });
        return true;
      case "fanfare:notice":
        this.emit("notice", { ...fields, publication });
        return true;
      case "fanfare:reactions":
        this.emit("reactions", { ...fields, publication });
        return true;
      default:
        return false;
    }
  }
};

// src/client.ts
var MAX_AUTH_REFUSALS = 2;
var FanfareClient = class extends Commands {
  options;
  WebSocketImpl;
  positions;
  backoff;
  random;
  commandTimeoutMs;
  connectTimeoutMs;
  currentState = "idle";
  connection;
  /** The connection whose `connect` succeeded, while it lasts. */
  live;
  currentSession;
  attempt = 0;
  /** Bumped by each attempt, so an attempt overtaken by close() and connect() gives up. */
  generation = 0;
  authRefusals = 0;
  /** The least wait the server or a failed restore asked for, applied to the next delay. */
  nextFloorMs = 0;
  stopReason;
  reconnectTimer;
  subscriptions = /* @__PURE__ */ new Map();
  /** The connection each subscription's subscribe was sent on. */
  sentOn = /* @__PURE__ */ new Map();
  waiting = /* @__PURE__ */ new Set();
  connectWaiters = /* @__PURE__ */ new Set();
  constructor(options) {
    super();
    this.options = options;
    this.WebSocketImpl = webSocketConstructor(options.WebSocket);
    this.positions = positionStoreFor(options.positions);
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.random = options.random ?? Math.random;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 1e4;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1e4;
  }
  get state() {
    return this.currentState;
  }
  /** The `connect` result of the current connection, while connected. */
  get session() {
    return this.currentSession;
  }
  /** The subscription to `channel`, if there is one. */
  subscription(channel) {
    return this.subscriptions.get(channel);
  }
  // ---------------------------------------------------------------------
  // Lifecycle
  /**
   * Starts connecting (if not already) and resolves with the next `connect`
   * result; rejects if the client stops first. After `closed`, starts again.
   */
  connect() {
    const waiting = new Promise((resolve, reject) => {
      if (this.currentState === "connected" && this.currentSession) {
        resolve(this.currentSession);
        return;
      }
      this.connectWaiters.add({ resolve, reject });
    });
    waiting.catch(() => {
    });
    if (this.currentState === "idle" || this.currentState === "closed") {
      this.stopReason = void 0;
      this.attempt = 0;
      this.authRefusals = 0;
      void this.startAttempt();
    }
    return waiting;
  }
  /** Closes the connection and stops reconnecting. Pending commands reject with ClosedError. */
  close() {
    this.stop({ reason: "closed by the client" });
  }
  async startAttempt() {
    this.reconnectTimer = void 0;
    const generation = ++this.generation;
    this.setState("connecting");
    this.emit("connecting", { attempt: this.attempt });
    let url;
    let token;
    try {
      url = typeof this.options.url === "function" ? await this.options.url() : this.options.url;
      token = this.options.getToken ? await this.options.getToken() : this.options.token;
    } catch (error) {
      this.emit("error", asError(error));
      if (this.currentState === "connecting" && generation === this.generation) {
        this.scheduleReconnect(1006, "getting the URL or token failed");
      }
      return;
    }
    if (this.currentState !== "connecting" || generation !== this.generation) return;
    let connection;
    try {
      const socket = new this.WebSocketImpl(url);
      connection = new Connection(socket, {
        onPush: (push) => this.onPush(connection, push),
        onClose: (info) => this.onClose(connection, info)
      });
    } catch (error) {
      this.stop({ reason: `cannot open a WebSocket to ${url}`, error: new ClosedError(asError(error).message) });
      return;
    }
    this.connection = connection;
    await this.handshake(connection, token);
  }
  /** Opens the socket and sends `connect`; on success, restores the subscriptions. */
  async handshake(connection, token) {
    const deadline = Date.now() + this.connectTimeoutMs;
    const timer = setTimeout(() => connection.close(1e3, "connect timed out"), this.connectTimeoutMs);
    let result;
    try {
      await connection.open;
      const fields = token === void 0 ? {} : { token };
      result = await connection.request(
        "connect",
        fields,
        Math.max(1, deadline - Date.now())
      );
    } catch (error) {
      if (error instanceof ProtocolError) this.connectRefused(connection, error);
      else if (error instanceof TimeoutError) connection.close(1e3, "connect timed out");
      return;
    } finally {
      clearTimeout(timer);
    }
    if (connection !== this.connection) return;
    this.live = connection;
    this.currentSession = result;
    this.authRefusals = 0;
    this.setState("connected");
    connection.startHeartbeat(result.ping_interval_ms, () => this.reconnectNow(connection, "heartbeat timeout"));
    for (const waiter of this.connectWaiters) waiter.resolve(result);
    this.connectWaiters.clear();
    this.emit("connected", result);
    const restores = [...this.subscriptions.values()].map((sub) => this.sendSubscribe(connection, sub));
    for (const command of [...this.waiting]) {
      this.waiting.delete(command);
      command.send(connection);
    }
    const outcomes = await Promise.all(restores);
    if (connection === this.live && outcomes.every((ok) => ok)) {
      this.attempt = 0;
      this.emit("restored", { subscriptions: outcomes.length });
    }
  }
  /** `connect` answered with an error (§2.1, §13.4 "When to stop"). */
  connectRefused(connection, error) {
    this.emit("error", error);
    const auth = error.code === "unauthorized" || error.code === "token_expired";
    if (auth && this.options.getToken && ++this.authRefusals < MAX_AUTH_REFUSALS) {
      this.reconnectNow(connection, "asking getToken for a new token");
      return;
    }
    if (!error.retry || error.code === "too_many_connections") {
      this.stop({ reason: `connect refused: ${error.code}`, error, code: auth ? CLOSE_UNAUTHORIZED : void 0 });
      return;
    }
    this.reconnectNow(connection, `connect refused: ${error.code}`, error.retryAfterMs);
  }
  /** Closes `connection` from this side, then reconnects with backoff. */
  reconnectNow(connection, reason, floorMs = 0) {
    if (connection !== this.connection) return;
    this.nextFloorMs = Math.max(this.nextFloorMs, floorMs);
    connection.close(1e3, reason);
  }
  onClose(connection, info) {
    if (connection !== this.connection) return;
    this.connection = void 0;
    this.live = void 0;
    this.currentSession = void 0;
    for (const sub of this.subscriptions.values()) sub.markSubscribing();
    this.sentOn.clear();
    if (this.currentState === "closed") return;
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
  stopVerdict(info) {
    if (info.byClient) return void 0;
    const push = info.disconnect;
    if (isAbnormalClose(info.code)) {
      return push && !push.reconnect ? `disconnected by the server: ${push.reason} (${push.code})` : void 0;
    }
    if (closeDecision(info.code) === "reconnect") return void 0;
    if (info.code === CLOSE_UNAUTHORIZED && this.options.getToken && ++this.authRefusals < MAX_AUTH_REFUSALS) {
      return void 0;
    }
    return `closed by the server with ${info.code}${info.reason ? ` (${info.reason})` : ""}`;
  }
  scheduleReconnect(code, reason) {
    this.attempt += 1;
    const delayMs = backoffDelay(this.attempt, this.backoff, this.random, this.nextFloorMs);
    this.nextFloorMs = 0;
    this.setState("disconnected");
    this.emit("disconnected", { code, reason, delayMs });
    this.reconnectTimer = setTimeout(() => void this.startAttempt(), delayMs);
  }
  stop(why) {
    if (this.currentState === "closed") return;
    this.stopReason = why;
    if (this.reconnectTimer !== void 0) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = void 0;
    this.setState("closed");
    const connection = this.connection;
    this.connection = void 0;
    this.live = void 0;
    this.currentSession = void 0;
    connection?.close(1e3, why.reason);
    for (const sub of this.subscriptions.values()) sub.markSubscribing();
    this.sentOn.clear();
    const error = why.error ?? new ClosedError(why.reason);
    for (const command of this.waiting) command.fail(error);
    this.waiting.clear();
    for (const waiter of this.connectWaiters) waiter.reject(error);
    this.connectWaiters.clear();
    const event = { reason: why.reason };
    if (why.code !== void 0) event.code = why.code;
    if (why.error !== void 0) event.error = why.error;
    this.emit("closed", event);
  }
  setState(state) {
    const previous = this.currentState;
    if (previous === state) return;
    this.currentState = state;
    this.emit("state", { state, previous });
  }
  // ---------------------------------------------------------------------
  // Pushes
  onPush(connection, push) {
    if (connection !== this.live) return;
    const channel = push.channel;
    if (typeof channel !== "string") return;
    const sub = this.subscriptions.get(channel);
    if (!sub || sub.state !== "subscribed" || this.sentOn.get(sub) !== connection) return;
    if (push.type === "publication") sub.applyPublication(push);
    else if (push.type === "join") sub.applyPresence("join", withoutType(push));
    else if (push.type === "leave") sub.applyPresence("leave", withoutType(push));
  }
  // ---------------------------------------------------------------------
  // Subscriptions
  /**
   * Subscribes to `channel`, now if connected, else once connected, and
   * again after every reconnect with `since` = its position. Throws if the
   * channel already has a subscription.
   */
  subscribe(channel, options = {}) {
    if (this.subscriptions.has(channel)) {
      throw new FanfareError("already_subscribed", `already subscribed to ${channel}`, false);
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
  async sendSubscribe(connection, sub) {
    const since = sub.since();
    const fields = { channel: sub.channel };
    if (since) fields.since = { epoch: since.epoch, offset: since.offset };
    this.sentOn.set(sub, connection);
    try {
      await connection.request("subscribe", fields, this.commandTimeoutMs, (result) => {
        if (this.subscriptions.get(sub.channel) === sub && this.sentOn.get(sub) === connection) {
          sub.applySubscribeReply(result, since);
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
      const floor = error instanceof ProtocolError ? error.retryAfterMs : void 0;
      this.reconnectNow(connection, `subscribe to ${sub.channel} failed`, floor);
      return false;
    }
  }
  async unsubscribe(sub) {
    if (this.subscriptions.get(sub.channel) !== sub) return;
    const connection = this.sentOn.get(sub);
    this.subscriptions.delete(sub.channel);
    this.sentOn.delete(sub);
    sub.applyUnsubscribe();
    if (!connection || connection !== this.live) return;
    try {
      await connection.request("unsubscribe", { channel: sub.channel }, this.commandTimeoutMs);
    } catch (error) {
      if (error instanceof ProtocolError && error.code !== "not_subscribed") throw error;
    }
  }
  // ---------------------------------------------------------------------
  // Commands
  /**
   * Sends any command and resolves with its `result`: the escape hatch for
   * commands this version has no method for. Without a connection it waits
   * for one, within the same timeout.
   */
  request(type, fields = {}, timeoutMs = this.commandTimeoutMs) {
    if (this.currentState === "closed") {
      return Promise.reject(
        this.stopReason?.error ?? new ClosedError(this.stopReason?.reason ?? "the client is closed")
      );
    }
    if (this.live) return this.live.request(type, fields, timeoutMs);
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const command = {
        send: (connection) => {
          clearTimeout(timer);
          connection.request(type, fields, Math.max(1, deadline - Date.now())).then((r) => resolve(r), reject);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        }
      };
      const timer = setTimeout(() => {
        this.waiting.delete(command);
        reject(new TimeoutError(type, timeoutMs));
      }, timeoutMs);
      this.waiting.add(command);
    });
  }
};
function withoutType(push) {
  const { type: _type, channel: _channel, ...rest } = push;
  return rest;
}
function asError(value) {
  return value instanceof Error ? value : new Error(String(value));
}
export {
  ClosedError,
  DEFAULT_BACKOFF,
  DisconnectedError,
  Emitter,
  FanfareClient,
  FanfareError,
  MemoryPositions,
  PROTOCOL_ERROR_CODES,
  ProtocolError,
  StoragePositions,
  Subscription,
  TimeoutError,
  backoffCeiling,
  backoffDelay,
  closeDecision
};
