// Where the client keeps each channel's last position (docs/protocol.md
// §9.3 rule 1): in memory by default, or in sessionStorage so that a page
// reload resumes where the tab was. Any object with the same three methods
// works too.

import type { StreamPosition } from './wire.js';

export interface PositionStore {
  get(channel: string): StreamPosition | undefined;
  set(channel: string, position: StreamPosition): void;
  delete(channel: string): void;
}

/** The part of the Web Storage API this package uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class MemoryPositions implements PositionStore {
  private readonly positions = new Map<string, StreamPosition>();

  get(channel: string): StreamPosition | undefined {
    const position = this.positions.get(channel);
    return position && { ...position };
  }

  set(channel: string, position: StreamPosition): void {
    this.positions.set(channel, { epoch: position.epoch, offset: position.offset });
  }

  delete(channel: string): void {
    this.positions.delete(channel);
  }
}

/**
 * Positions in a Web Storage (sessionStorage by default), one key per
 * channel under `prefix`. A storage that throws (quota, private mode) only
 * costs the persistence: the in-memory copy stays right.
 */
export class StoragePositions implements PositionStore {
  private readonly memory = new MemoryPositions();

  constructor(
    private readonly storage: StorageLike,
    private readonly prefix = 'fanfare:position:',
  ) {}

  get(channel: string): StreamPosition | undefined {
    const held = this.memory.get(channel);
    if (held) return held;
    const stored = this.read(channel);
    if (stored) this.memory.set(channel, stored);
    return stored;
  }

  set(channel: string, position: StreamPosition): void {
    this.memory.set(channel, position);
    try {
      this.storage.setItem(this.prefix + channel, JSON.stringify({ epoch: position.epoch, offset: position.offset }));
    } catch {
      // Persistence is best effort; see the class comment.
    }
  }

  delete(channel: string): void {
    this.memory.delete(channel);
    try {
      this.storage.removeItem(this.prefix + channel);
    } catch {
      // As in set().
    }
  }

  private read(channel: string): StreamPosition | undefined {
    let text: string | null;
    try {
      text = this.storage.getItem(this.prefix + channel);
    } catch {
      return undefined;
    }
    if (!text) return undefined;
    try {
      const value = JSON.parse(text) as unknown;
      if (isPosition(value)) return { epoch: value.epoch, offset: value.offset };
    } catch {
      // A corrupt entry is as good as none.
    }
    return undefined;
  }
}

function isPosition(value: unknown): value is StreamPosition {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.epoch === 'string' && Number.isSafeInteger(v.offset) && (v.offset as number) >= 0;
}

/** The store the `positions` option names. */
export function positionStoreFor(option: 'memory' | 'sessionStorage' | PositionStore | undefined): PositionStore {
  if (option === undefined || option === 'memory') return new MemoryPositions();
  if (option === 'sessionStorage') {
    const storage = (globalThis as { sessionStorage?: StorageLike }).sessionStorage;
    if (!storage) throw new TypeError('positions: "sessionStorage" needs a global sessionStorage (a browser)');
    return new StoragePositions(storage);
  }
  return option;
}
