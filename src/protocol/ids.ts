/**
 * Message ids: 26 characters of Crockford base32, like ULIDs. The first ten
 * characters are the millisecond the message was stored, the rest a counter
 * that starts at a random point each millisecond. Ids sort in publish order,
 * as strings, across the whole broker.
 */
import { DiscueError } from './errors.js';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const DECODE: Record<string, number> = Object.fromEntries([...ALPHABET].map((c, i) => [c, i]));
export const ID_RE = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const HALF = 2 ** 40;

function encode(value: number, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/** 4 characters for a value below 2^20, in integer ops (encode works in doubles: its values pass 2^31). */
function encode20(value: number): string {
  return ALPHABET[(value >>> 15) & 31]! + ALPHABET[(value >>> 10) & 31]! + ALPHABET[(value >>> 5) & 31]! + ALPHABET[value & 31]!;
}

const TWO_20 = 2 ** 20;
/** The last millisecond 10 characters hold. */
const MAX_TIME = 2 ** 50 - 1;

function decode(text: string): number {
  let value = 0;
  for (const c of text) value = value * 32 + DECODE[c]!;
  return value;
}

export function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && ID_RE.test(value);
}

export function assertMessageId(value: unknown): string {
  if (!isMessageId(value)) {
    throw new DiscueError('INVALID_ARGUMENT', `invalid message id ${JSON.stringify(value)}: ids are 26 characters like 01JF8Z3K4M5N6P7Q8R9S0T1V2W`);
  }
  return value;
}

/** The millisecond encoded in an id. */
export function timeOfId(id: string): number {
  return decode(id.slice(0, 10));
}

/** The smallest id that could have been made at `ms`: for "since TIME" queries. */
export function firstIdAt(ms: number): string {
  return encode(Math.max(0, Math.floor(ms)), 10) + '0'.repeat(16);
}

/** An id that sorts after every id made before `ms` and before every id made at or after it. */
export function lastIdBefore(ms: number): string {
  return encode(Math.max(0, Math.floor(ms) - 1), 10) + 'Z'.repeat(16);
}

/**
 * Makes strictly increasing ids, even if the clock steps back: then it keeps
 * the last millisecond and counts on.
 */
export class IdGenerator {
  private time = 0;
  private hi = 0;
  private lo = 0;
  /** `time` and `hi` encoded, and `time` as ISO 8601: made when they change, not per id. */
  private timeText = encode(0, 10);
  private hiText = encode(0, 8);
  private iso: string | undefined;

  next(now: number = Date.now()): string {
    if (now > this.time) {
      this.setTime(now);
      // Leave headroom in `hi` so counting on within a millisecond never overflows.
      this.setHi(Math.floor(Math.random() * 2 ** 39));
      this.lo = Math.floor(Math.random() * HALF);
    } else if (++this.lo >= HALF) {
      this.lo = 0;
      if (this.hi + 1 < HALF) this.setHi(this.hi + 1);
      else {
        // Both counter parts at their top (only an observed id can put them
        // there: an import's): the next millisecond. Wrapping `hi` to 0 made
        // an id that sorted before the one observed, stored before it.
        if (this.time >= MAX_TIME) throw new DiscueError('INTERNAL', `no message id sorts after ${this.timeText}${'Z'.repeat(16)}`);
        this.setTime(this.time + 1);
        this.setHi(0);
      }
    }
    // lo (40 bits) as two 20-bit halves: the same 8 characters as encode(lo, 8).
    const high = Math.floor(this.lo / TWO_20);
    return this.timeText + this.hiText + encode20(high) + encode20(this.lo - high * TWO_20);
  }

  private setHi(hi: number): void {
    this.hi = hi;
    this.hiText = encode(hi, 8);
  }

  private setTime(ms: number): void {
    this.time = ms;
    this.timeText = encode(ms, 10);
    this.iso = undefined;
  }

  /** The millisecond of the last id made. */
  get lastTime(): number {
    return this.time;
  }

  /** lastTime as ISO 8601 (a publish's time: ~1 µs to make, so once per millisecond, not per publish). */
  get lastTimeIso(): string {
    return (this.iso ??= new Date(this.time).toISOString());
  }

  /** Makes sure every later id sorts after `id` (used at start-up with the newest stored id). */
  observe(id: string): void {
    const time = decode(id.slice(0, 10));
    const hi = decode(id.slice(10, 18));
    const lo = decode(id.slice(18, 26));
    if (time > this.time || (time === this.time && (hi > this.hi || (hi === this.hi && lo >= this.lo)))) {
      if (time !== this.time) this.setTime(time);
      this.setHi(hi);
      this.lo = lo;
    }
  }
}
