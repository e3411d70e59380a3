// One channel subscription and its position (docs/protocol.md §9.3):
//
// 1. The position is the (epoch, offset) of the last durable publication
//    processed; it lives in the client's PositionStore.
// 2. A subscribe reply without `since`, or with `recovered: false`, sets it
//    (the second after a `notRecovered` event, so the app reloads first).
// 3. `recovered: true` keeps it; the replayed publications advance it.
// 4. Every durable publication advances it; ephemeral ones never do.
// 5. A publication at or below the position in the same epoch is dropped.
// 6. A publication of another epoch takes its position, after a
//    `notRecovered` event with reason `epoch_changed`.
//
// Publications are then routed by kind to one typed event each, so an app
// that renders messages listens to `publication` and sees only messages.

import { Emitter } from './emitter.js';
import type { FanfareError } from './errors.js';
import type { PositionStore } from './positions.js';
import type { Json, Publication, StreamPosition, SubscribeResult } from './wire.js';

export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

export interface SubscribedEvent {
  channel: string;
  /** The channel's epoch and top offset, from the reply. */
  epoch: string;
  offset: number;
  /** Absent when the subscribe carried no `since`; see §5.2. */
  recovered?: boolean;
  /** True when this is a resubscribe after a reconnect. */
  resubscribed: boolean;
}

export interface NotRecoveredEvent {
  channel: string;
  /**
   * `recovery_failed`: a resubscribe answered `recovered: false` (the gap
   * was too large, trimmed, or the epoch changed). `epoch_changed`: a
   * publication of a new epoch arrived. Either way publications may have
   * been missed: reload the channel's state from your own source (or
   * `history`).
   */
  reason: 'recovery_failed' | 'epoch_changed';
  /** The position the client held. */
  previous: StreamPosition;
  /** The position it holds now. */
  position: StreamPosition;
}

export interface UpdateEvent {
  /** The offset of the publication this update record replaces. */
  target: number;
  data: Json | undefined;
  publication: Publication;
}

export interface DeleteEvent {
  /** The offsets the delete record deleted. */
  offsets: number[];
  publication: Publication;
}

export interface PresenceEvent {
  user: string;
  info?: Json;
}

export interface MembersEvent {
  added?: string[];
  removed?: string[];
  publication: Publication;
}

/** `fanfare:read` and `fanfare:delivered` receipts. */
export interface ReceiptEvent {
  user: string;
  epoch: string;
  offset: number;
  publication: Publication;
}

export interface TypingEvent {
  user: string;
  /** Show the user as typing this long, unless renewed or cleared by a publication of theirs. */
  expires_ms: number;
  publication: Publication;
}

/** A `fanfare:notice` in a `feed:<user>` channel: a new publication elsewhere. */
export interface NoticeEvent {
  channel: string;
  epoch: string;
  offset: number;
  /** The publication's event, when it has one. */
  event?: string;
  /** Absent when the server published. */
  from?: string;
  /** Absent when the publication has no text. */
  preview?: string;
  publication: Publication;
}

export interface ReactionsEvent {
  counts: Record<string, number>;
  window_ms: number;
  publication: Publication;
}

export interface UnsubscribedEvent {
  channel: string;
  /** `client`: unsubscribe() was called; `refused`: the server refused a (re)subscribe for good. */
  reason: 'client' | 'refused';
  error?: FanfareError;
}

export interface SubscriptionEvents {
  subscribed: SubscribedEvent;
  notRecovered: NotRecoveredEvent;
  /** A message: any publication that is not one of the kinds below. */
  publication: Publication;
  /** An update record (`updates`): an edit of an earlier publication. */
  update: UpdateEvent;
  /** A delete record (`deletes`). */
  delete: DeleteEvent;
  /** A deleted publication served in its place during recovery. */
  tombstone: Publication;
  join: PresenceEvent;
  leave: PresenceEvent;
  members: MembersEvent;
  read: ReceiptEvent;
  delivered: ReceiptEvent;
  typing: TypingEvent;
  notice: NoticeEvent;
  reactions: ReactionsEvent;
  /** The subscribe was refused; see also `unsubscribed`. */
  error: FanfareError;
  unsubscribed: UnsubscribedEvent;
}

/** What a Subscription needs from its client. */
export interface SubscriptionOwner {
  unsubscribe(subscription: Subscription): Promise<void>;
}

export class Subscription extends Emitter<SubscriptionEvents> {
  readonly channel: string;
  private currentState: SubscriptionState = 'subscribing';
  private subscribedOnce = false;
  private readonly readyPromise: Promise<SubscribedEvent>;
  private settleReady!: { resolve: (e: SubscribedEvent) => void; reject: (e: Error) => void };

  /** Made by FanfareClient.subscribe; not meant to be called directly. */
  constructor(
    channel: string,
    private readonly owner: SubscriptionOwner,
    private readonly positions: PositionStore,
  ) {
    super();
    this.channel = channel;
    this.readyPromise = new Promise<SubscribedEvent>((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    // Nobody has to await `ready`; a refusal is also an `error` event.
    this.readyPromise.catch(() => {});
  }

  get state(): SubscriptionState {
    return this.currentState;
  }

  /** The last durable publication processed, if any. */
  get position(): StreamPosition | undefined {
    return this.positions.get(this.channel);
  }

  /** Resolves on the first `subscribed`; rejects if it is refused or unsubscribed first. */
  get ready(): Promise<SubscribedEvent> {
    return this.readyPromise;
  }

  unsubscribe(): Promise<void> {
    return this.owner.unsubscribe(this);
  }

  /** @internal The connection dropped: a resubscribe will follow. */
  markSubscribing(): void {
    if (this.currentState === 'subscribed') this.currentState = 'subscribing';
  }

  /** @internal The `since` to send with the next subscribe. */
  since(): StreamPosition | undefined {
    return this.positions.get(this.channel);
  }

  /** @internal Rules 2 and 3 of the module comment. */
  applySubscribeReply(result: SubscribeResult, since: StreamPosition | undefined): void {
    const reply: StreamPosition = { epoch: result.epoch, offset: result.offset };
    const resubscribed = this.subscribedOnce;
    this.currentState = 'subscribed';
    this.subscribedOnce = true;
    if (since === undefined) {
      this.positions.set(this.channel, reply);
    } else if (result.recovered !== true) {
      this.positions.set(this.channel, reply);
      this.emit('notRecovered', { channel: this.channel, reason: 'recovery_failed', previous: since, position: reply });
    }
    const event: SubscribedEvent = { channel: this.channel, epoch: result.epoch, offset: result.offset, resubscribed };
    if (result.recovered !== undefined) event.recovered = result.recovered;
    this.emit('subscribed', event);
    this.settleReady.resolve(event);
  }

  /** @internal The server refused the subscribe for good (`retry: false`). */
  applyRefusal(error: FanfareError): void {
    this.currentState = 'unsubscribed';
    this.emit('error', error);
    this.emit('unsubscribed', { channel: this.channel, reason: 'refused', error });
    this.settleReady.reject(error);
  }

  /** @internal unsubscribe() was called. */
  applyUnsubscribe(): void {
    if (this.currentState === 'unsubscribed') return;
    this.currentState = 'unsubscribed';
    this.positions.delete(this.channel);
    this.emit('unsubscribed', { channel: this.channel, reason: 'client' });
    this.settleReady.reject(new Error(`unsubscribed from ${this.channel} before the subscribe was answered`));
  }

  /** @internal A publication push of this channel (rules 4–6), then routing. */
  applyPublication(publication: Publication): void {
    if (publication.epoch !== undefined && publication.offset !== undefined) {
      if (!this.advance({ epoch: publication.epoch, offset: publication.offset })) return;
    }
    this.route(publication);
  }

  /** @internal A `join` or `leave` push of this channel. */
  applyPresence(kind: 'join' | 'leave', event: PresenceEvent): void {
    this.emit(kind, event);
  }

  /** Rules 4–6; false for a duplicate. */
  private advance(next: StreamPosition): boolean {
    const held = this.positions.get(this.channel);
    if (held && held.epoch === next.epoch && next.offset <= held.offset) return false;
    this.positions.set(this.channel, next);
    if (held && held.epoch !== next.epoch) {
      this.emit('notRecovered', { channel: this.channel, reason: 'epoch_changed', previous: held, position: next });
    }
    return true;
  }

  private route(publication: Publication): void {
    if (publication.deletes !== undefined) {
      this.emit('delete', { offsets: publication.deletes, publication });
      return;
    }
    if (publication.deleted === true) {
      this.emit('tombstone', publication);
      return;
    }
    if (publication.updates !== undefined) {
      this.emit('update', { target: publication.updates, data: publication.data, publication });
      return;
    }
    if (!this.routeServerEvent(publication)) this.emit('publication', publication);
  }

  /** The `fanfare:*` events of issue 13 and shaped namespaces; false if it is none of them. */
  private routeServerEvent(publication: Publication): boolean {
    const data = publication.data;
    if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
    const fields = data as Record<string, unknown>;
    switch (publication.event) {
      case 'fanfare:members':
        this.emit('members', { ...(fields as Omit<MembersEvent, 'publication'>), publication });
        return true;
      case 'fanfare:read':
        this.emit('read', { ...(fields as unknown as Omit<ReceiptEvent, 'publication'>), publication });
        return true;
      case 'fanfare:delivered':
        this.emit('delivered', { ...(fields as unknown as Omit<ReceiptEvent, 'publication'>), publication });
        return true;
      case 'fanfare:typing':
        this.emit('typing', { ...(fields as unknown as Omit<TypingEvent, 'publication'>), publication });
        return true;
      case 'fanfare:notice':
        this.emit('notice', { ...(fields as unknown as Omit<NoticeEvent, 'publication'>), publication });
        return true;
      case 'fanfare:reactions':
        this.emit('reactions', { ...(fields as unknown as Omit<ReactionsEvent, 'publication'>), publication });
        return true;
      default:
        return false;
    }
  }
}
