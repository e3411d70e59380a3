// Typed errors. A command's promise rejects with one of these; `code` is a
// row of the protocol's error table (docs/protocol.md §7) for errors the
// server sent, and one of the client's own codes otherwise.

import type { WireError } from './wire.js';

/** Every code of the protocol's error table (§7), issue 13's new rows included. */
export const PROTOCOL_ERROR_CODES = [
  'bad_request',
  'unknown_command',
  'invalid_channel',
  'message_too_large',
  'unauthorized',
  'token_expired',
  'permission_denied',
  'not_connected',
  'already_connected',
  'already_subscribed',
  'not_subscribed',
  'too_many_channels',
  'rate_limited',
  'slow_mode',
  'too_many_connections',
  'banned',
  'muted',
  'content_rejected',
  'not_found',
  'not_available',
  'unavailable',
  'shutting_down',
  'internal',
  'too_many_members',
  'too_many_memberships',
  'unknown',
] as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/** Codes of errors that the client itself raises, not the server. */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'closed';

export type ErrorCode = ProtocolErrorCode | ClientErrorCode;

/** The base of every error this package throws or emits. */
export class FanfareError extends Error {
  readonly code: ErrorCode;
  /** Whether the same command could succeed later unchanged. */
  readonly retry: boolean;

  constructor(code: ErrorCode, message: string, retry: boolean) {
    super(message);
    this.name = 'FanfareError';
    this.code = code;
    this.retry = retry;
  }
}

/**
 * The server answered a command with an error. A code this client does not
 * know reads as `unknown` (§7), and `wireCode` keeps what the server sent.
 */
export class ProtocolError extends FanfareError {
  declare readonly code: ProtocolErrorCode;
  /** The code exactly as the server sent it. */
  readonly wireCode: string;
  /** The least wait before the same command can succeed, when the server knows it. */
  readonly retryAfterMs: number | undefined;
  /** The command that failed (`publish`, `subscribe`, …). */
  readonly command: string;

  constructor(command: string, error: WireError) {
    const known = (PROTOCOL_ERROR_CODES as readonly string[]).includes(error.code);
    super(known ? (error.code as ProtocolErrorCode) : 'unknown', error.message ?? error.code, error.retry === true);
    this.name = 'ProtocolError';
    this.wireCode = error.code;
    this.retryAfterMs = typeof error.retry_after_ms === 'number' ? error.retry_after_ms : undefined;
    this.command = command;
  }
}

/** No reply came within the command timeout. The command may still have been applied. */
export class TimeoutError extends FanfareError {
  readonly command: string;

  constructor(command: string, timeoutMs: number) {
    super('timeout', `no reply to ${command} within ${timeoutMs} ms`, true);
    this.name = 'TimeoutError';
    this.command = command;
  }
}

/**
 * The connection ended while the command waited for its reply: its outcome
 * is unknown (§13.4). Retry a publish only with an `idempotencyKey`.
 */
export class DisconnectedError extends FanfareError {
  readonly command: string;

  constructor(command: string) {
    super('disconnected', `the connection ended before the reply to ${command}`, true);
    this.name = 'DisconnectedError';
    this.command = command;
  }
}

/** The client was closed, by `close()` or because the server said not to reconnect. */
export class ClosedError extends FanfareError {
  constructor(message: string) {
    super('closed', message, false);
    this.name = 'ClosedError';
  }
}
