// Whether to reconnect after the socket closed (docs/protocol.md §8, §13.4).

/** Codes after which reconnecting cannot help until something changes. */
const STOP_STANDARD_CODES = new Set([1002, 1007, 1009]);

/** The close code of a rejected token (`unauthorized`, `token_expired`). */
export const CLOSE_UNAUTHORIZED = 4001;

/**
 * What a close code says: `reconnect` for 4500–4999 and for codes that are
 * not Fanfare's (1000, 1001, 1006, 1011, …), `stop` for 4000–4499 and the
 * WebSocket-level failures 1002, 1007, 1009.
 */
export function closeDecision(code: number): 'reconnect' | 'stop' {
  if (code >= 4000 && code <= 4499) return 'stop';
  if (code >= 4500 && code <= 4999) return 'reconnect';
  if (STOP_STANDARD_CODES.has(code)) return 'stop';
  return 'reconnect';
}

/** Codes that mean the socket ended without a close frame of the server's choosing. */
export function isAbnormalClose(code: number): boolean {
  return code === 1005 || code === 1006;
}
