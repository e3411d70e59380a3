// The native protocol's frames (docs/protocol.md §3, §5, §6) as TypeScript
// types, and the one function that turns a received text frame into a reply
// or a push. Everything the server may add later (fields, push types) passes
// through untouched: a client must ignore what it does not know (§15).

/** Any JSON value. `data` of a publication is any JSON value except `null`. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Where a durable publication sits in its channel's stream (§1, §9). */
export interface StreamPosition {
  /** Opaque; compare only for equality. It changes when the stream was reset or lost. */
  epoch: string;
  /** Starts at 1 within an epoch; 0 means "no publication yet". */
  offset: number;
}

/** A `publication` push, or one entry of a `history` result (which has no `channel`). */
export interface Publication {
  channel: string;
  /** Absent for ephemeral publications (and a shadow-banned author's own echo). */
  epoch?: string;
  /** Absent for ephemeral publications. */
  offset?: number;
  /** Milliseconds since the Unix epoch, when the server accepted it. */
  time: number;
  /** Shaped namespaces: publications sampled out since the previous delivery. */
  skipped?: number;
  /** Shaped namespaces: a publication of the priority lane. */
  priority?: true;
  event?: string;
  /** Absent from delete records and tombstones. */
  data?: Json;
  /** A delete record: the offsets it deleted. */
  deletes?: number[];
  /** A tombstone: this publication was deleted. */
  deleted?: true;
  /** An update record (an edit): the offset of the publication it replaces. */
  updates?: number;
  /** History only: the newest version of an edited publication. */
  edited?: true;
}

/** A `history` entry: a publication without `channel`. */
export type HistoryPublication = Omit<Publication, 'channel'>;

export interface JoinPush {
  type: 'join';
  channel: string;
  user: string;
  info?: Json;
}

export interface LeavePush {
  type: 'leave';
  channel: string;
  user: string;
}

export interface DisconnectPush {
  type: 'disconnect';
  code: number;
  reason: string;
  reconnect: boolean;
  reconnect_after_ms?: number;
}

export type PublicationPush = Publication & { type: 'publication' };

/** An error object of a reply (§3.2, §7). */
export interface WireError {
  code: string;
  message: string;
  retry: boolean;
  retry_after_ms?: number;
}

export type Reply = { id: number; result: Record<string, unknown> } | { id: number; error: WireError };

/** A message without `id`: known push types, or one this client does not know. */
export type Push = PublicationPush | JoinPush | LeavePush | DisconnectPush | { type: string; [key: string]: unknown };

export type Incoming = { kind: 'reply'; reply: Reply } | { kind: 'push'; push: Push };

/** Result of `connect` (§5.1). */
export interface ConnectResult {
  client: string;
  user: string;
  version: string;
  ping_interval_ms: number;
}

/** Result of `subscribe` (§5.2). */
export interface SubscribeResult {
  epoch: string;
  offset: number;
  /** Present only when the subscribe carried `since`. */
  recovered?: boolean;
}

/** Result of `publish` (§5.4): empty for an ephemeral publication. */
export interface PublishResult {
  epoch?: string;
  offset?: number;
}

/** Result of `history` (§5.5). */
export interface HistoryResult {
  epoch: string;
  top_offset: number;
  publications: HistoryPublication[];
}

export interface PresenceMember {
  user: string;
  info?: Json;
}

/** Result of `presence` (§5.6). */
export interface PresenceResult {
  members: PresenceMember[];
}

/** Result of `members` with `action: "list"` (issue 13). */
export interface MembersPage {
  members: string[];
  count: number;
  /** Absent on the last page; pass it as `after` for the next one. */
  next?: string;
}

export interface MembersAdded {
  added: string[];
  count: number;
}

export interface MembersRemoved {
  removed: string[];
  count: number;
}

/** Result of `read`. */
export interface ReadResult {
  /** False when the cursor already was at or past the position in that epoch. */
  moved: boolean;
}

/** One channel of an `unread` result. */
export interface UnreadChannel {
  channel: string;
  epoch: string;
  offset: number;
  /** The read cursor's offset, 0 when never read. */
  read: number;
  unread: number;
}

export interface UnreadPage {
  channels: UnreadChannel[];
  next?: string;
}

/** Result of `edit` and `delete`: the update or delete record's position. */
export interface EditResult {
  epoch: string;
  offset: number;
}

export interface DeleteResult extends EditResult {
  deleted: number[];
}

/**
 * Reads one received text frame. Returns null for anything that is not a
 * JSON object with a `type` (a push) or a numeric `id` (a reply): the server
 * never sends such a frame, so there is nothing to act on.
 */
export function decodeFrame(text: string): Incoming | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const message = value as Record<string, unknown>;
  if (typeof message.id === 'number') {
    if (isWireError(message.error)) return { kind: 'reply', reply: { id: message.id, error: message.error } };
    const result = typeof message.result === 'object' && message.result !== null ? message.result : {};
    return { kind: 'reply', reply: { id: message.id, result: result as Record<string, unknown> } };
  }
  if (typeof message.type === 'string') return { kind: 'push', push: message as Push };
  return null;
}

function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null) return false;
  const error = value as Record<string, unknown>;
  return typeof error.code === 'string';
}

/** A command as sent: `id` and `type` first, as the server's examples show (§5). */
export function encodeCommand(id: number, type: string, fields: Record<string, unknown>): string {
  const command: Record<string, unknown> = { id, type };
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) command[key] = value;
  }
  return JSON.stringify(command);
}
