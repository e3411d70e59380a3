// How long to wait before reconnect attempt n (docs/protocol.md §13.4):
// min(base × 2^(n−1), max) × f with f uniform in [0, 1): "full jitter",
// which spreads a crowd of clients dropped together over the whole
// ceiling; and never less than what the server asked for (a disconnect
// push's reconnect_after_ms, or the Retry-After of a refused handshake).

export interface BackoffOptions {
  /** Ceiling of the first attempt, in ms. Default 1000. */
  baseMs?: number;
  /** Largest ceiling, in ms. Default 30000. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 1000, maxMs: 30_000 };

/** The ceiling of attempt `attempt` (counting from 1), before jitter. */
export function backoffCeiling(attempt: number, options: Required<BackoffOptions>): number {
  const exponent = Math.max(0, attempt - 1);
  // 2^exponent overflows to Infinity long before it matters; min() caps it.
  return Math.min(options.baseMs * 2 ** exponent, options.maxMs);
}

/**
 * The delay of attempt `attempt`. `random` returns a number in [0, 1), as
 * Math.random does; `serverFloorMs` is the server's lower bound, if any.
 */
export function backoffDelay(
  attempt: number,
  options: Required<BackoffOptions>,
  random: () => number,
  serverFloorMs = 0,
): number {
  const factor = random();
  const jittered = Math.round(backoffCeiling(attempt, options) * factor);
  return Math.max(jittered, serverFloorMs);
}
