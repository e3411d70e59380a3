// @fanfare/client: a client for Fanfare's native WebSocket protocol
// (docs/protocol.md in the Fanfare repository). Start at FanfareClient.

export { FanfareClient } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, SubscribeOptions } from './client.js';
export type { HistoryOptions, PageOptions, PublishOptions } from './commands.js';
export { Subscription } from './subscription.js';
export type {
  DeleteEvent,
  MembersEvent,
  NoticeEvent,
  NotRecoveredEvent,
  PresenceEvent,
  ReactionsEvent,
  ReceiptEvent,
  SubscribedEvent,
  SubscriptionEvents,
  SubscriptionState,
  TypingEvent,
  UnsubscribedEvent,
  UpdateEvent,
} from './subscription.js';
export {
  ClosedError,
  DisconnectedError,
  FanfareError,
  PROTOCOL_ERROR_CODES,
  ProtocolError,
  TimeoutError,
} from './errors.js';
export type { ClientErrorCode, ErrorCode, ProtocolErrorCode } from './errors.js';
export { MemoryPositions, StoragePositions } from './positions.js';
export type { PositionStore, StorageLike } from './positions.js';
export { backoffCeiling, backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { closeDecision } from './close-codes.js';
export { Emitter } from './emitter.js';
export type { Listener } from './emitter.js';
export type { EventHandler, WebSocketConstructor, WebSocketLike } from './socket.js';
export type {
  ConnectResult,
  DeleteResult,
  EditResult,
  HistoryPublication,
  HistoryResult,
  Json,
  MembersAdded,
  MembersPage,
  MembersRemoved,
  PresenceMember,
  PresenceResult,
  Publication,
  PublishResult,
  ReadResult,
  StreamPosition,
  SubscribeResult,
  UnreadChannel,
  UnreadPage,
  WireError,
} from './wire.js';
