// The commands of docs/protocol.md §5 and of issue 13, each a typed
// wrapper over one `request`: field names as the wire spells them, results
// as the protocol documents them. FanfareClient supplies `request` (which
// waits for a connection and matches the reply); nothing here knows about
// sockets.

import { Emitter } from './emitter.js';
import type { ClientEvents } from './client.js';
import type {
  DeleteResult,
  EditResult,
  HistoryResult,
  Json,
  MembersAdded,
  MembersPage,
  MembersRemoved,
  PresenceResult,
  PublishResult,
  ReadResult,
  StreamPosition,
  UnreadPage,
} from './wire.js';

export interface PublishOptions {
  event?: string;
  /** Makes a retried publish apply once (§5.4). */
  idempotencyKey?: string;
  /** Deliver only to current subscribers; not stored, no position. */
  ephemeral?: boolean;
  timeoutMs?: number;
}

export interface HistoryOptions {
  /** Only offsets greater than this one. */
  since?: number;
  limit?: number;
  reverse?: boolean;
  timeoutMs?: number;
}

export interface PageOptions {
  after?: string;
  limit?: number;
  timeoutMs?: number;
}

export abstract class Commands extends Emitter<ClientEvents> {
  /** Sends command `type` with `fields` and resolves with its `result`. */
  abstract request<T = Record<string, unknown>>(
    type: string,
    fields?: Record<string, unknown>,
    timeoutMs?: number,
  ): Promise<T>;

  /** Publishes `data` (not null) to `channel` (§5.4). Ephemeral publications resolve with `{}`. */
  publish(channel: string, data: Json, options: PublishOptions = {}): Promise<PublishResult> {
    return this.request<PublishResult>(
      'publish',
      { channel, event: options.event, data, idempotency_key: options.idempotencyKey, ephemeral: options.ephemeral },
      options.timeoutMs,
    );
  }

  /** Reads stored publications (§5.5). */
  history(channel: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    return this.request<HistoryResult>(
      'history',
      { channel, since: options.since, limit: options.limit, reverse: options.reverse },
      options.timeoutMs,
    );
  }

  /** The users present in `channel` (§5.6). */
  presence(channel: string, timeoutMs?: number): Promise<PresenceResult> {
    return this.request<PresenceResult>('presence', { channel }, timeoutMs);
  }

  /** An application-level round trip (§5.7); resolves with the time it took in ms. */
  async ping(timeoutMs?: number): Promise<number> {
    const started = Date.now();
    await this.request('ping', {}, timeoutMs);
    return Date.now() - started;
  }

  /** A reaction in a shaped namespace (§5.9); the counts come as `reactions` events. */
  async react(channel: string, reaction: string, timeoutMs?: number): Promise<void> {
    await this.request('react', { channel, reaction }, timeoutMs);
  }

  /** A moderator's action (§5.8): `action` and its fields, as the protocol names them. */
  moderate(fields: { action: string } & Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.request('moderate', fields, timeoutMs);
  }

  /** One page of a members channel's members, ordered; pass `next` as `after` for the next page. */
  members(channel: string, options: PageOptions = {}): Promise<MembersPage> {
    return this.request<MembersPage>(
      'members',
      { channel, action: 'list', after: options.after, limit: options.limit },
      options.timeoutMs,
    );
  }

  /** Adds members (namespaces with `manage_members = "grant"` and a `members` claim). */
  addMembers(channel: string, users: string[], timeoutMs?: number): Promise<MembersAdded> {
    return this.request<MembersAdded>('members', { channel, action: 'add', users }, timeoutMs);
  }

  removeMembers(channel: string, users: string[], timeoutMs?: number): Promise<MembersRemoved> {
    return this.request<MembersRemoved>('members', { channel, action: 'remove', users }, timeoutMs);
  }

  /** Moves this user's read cursor in `channel` to `position`. */
  read(channel: string, position: StreamPosition, timeoutMs?: number): Promise<ReadResult> {
    return this.request<ReadResult>('read', { channel, epoch: position.epoch, offset: position.offset }, timeoutMs);
  }

  /** Tells the channel's other subscribers this user has received up to `position`. */
  async delivered(channel: string, position: StreamPosition, timeoutMs?: number): Promise<void> {
    await this.request('delivered', { channel, epoch: position.epoch, offset: position.offset }, timeoutMs);
  }

  /** This user's channels with their unread counts, a page at a time. */
  unread(options: PageOptions = {}): Promise<UnreadPage> {
    return this.request<UnreadPage>('unread', { after: options.after, limit: options.limit }, options.timeoutMs);
  }

  /** Says this user is typing in `channel`; throttled by the server, so call it on each keystroke. */
  async typing(channel: string, timeoutMs?: number): Promise<void> {
    await this.request('typing', { channel }, timeoutMs);
  }

  /** Replaces the data of publication `offset` (its author, or a moderator). */
  edit(channel: string, offset: number, data: Json, timeoutMs?: number): Promise<EditResult> {
    return this.request<EditResult>('edit', { channel, offset, data }, timeoutMs);
  }

  /** Deletes publication `offset` (its author, or a moderator). */
  delete(channel: string, offset: number, timeoutMs?: number): Promise<DeleteResult> {
    return this.request<DeleteResult>('delete', { channel, offset }, timeoutMs);
  }
}
