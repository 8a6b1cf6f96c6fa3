/**
 * Rolling counters for the daemon's statistics: per-minute buckets for the
 * last 24 hours plus a total since start. Cheap enough to bump on every
 * publish and every delivery attempt.
 */
const MINUTES = 24 * 60;

export interface Window {
  lastMinute: number;
  lastHour: number;
  last24h: number;
  sinceStart: number;
}

export class RollingCounter {
  private readonly counts = new Float64Array(MINUTES);
  private readonly stamps = new Int32Array(MINUTES).fill(-1);
  private total = 0;

  add(n = 1, now = Date.now()): void {
    const minute = Math.floor(now / 60_000);
    const slot = minute % MINUTES;
    if (this.stamps[slot] !== minute) {
      this.stamps[slot] = minute;
      this.counts[slot] = 0;
    }
    this.counts[slot]! += n;
    this.total += n;
  }

  /** Sum over the last `minutes` minutes, counting the current one; "last minute" is the last 60 s. */
  sum(minutes: number, now = Date.now()): number {
    const current = Math.floor(now / 60_000);
    let total = 0;
    for (let m = current - minutes + 1; m <= current; m++) {
      const slot = ((m % MINUTES) + MINUTES) % MINUTES;
      if (this.stamps[slot] === m) total += this.counts[slot]!;
    }
    return total;
  }

  /** Events in the last 60 seconds, weighting the previous minute by what of it is in range. */
  lastSixtySeconds(now = Date.now()): number {
    const current = Math.floor(now / 60_000);
    const into = (now % 60_000) / 60_000;
    return this.sum(1, now) + this.bucket(current - 1) * (1 - into);
  }

  window(now = Date.now()): Window {
    return {
      lastMinute: Math.round(this.lastSixtySeconds(now)),
      lastHour: this.sum(60, now),
      last24h: this.sum(MINUTES, now),
      sinceStart: this.total,
    };
  }

  private bucket(minute: number): number {
    const slot = ((minute % MINUTES) + MINUTES) % MINUTES;
    return this.stamps[slot] === minute ? this.counts[slot]! : 0;
  }
}

/** Named counters, created on first use. */
export class StatsRegistry {
  private readonly counters = new Map<string, RollingCounter>();

  counter(key: string): RollingCounter {
    let counter = this.counters.get(key);
    if (!counter) {
      counter = new RollingCounter();
      this.counters.set(key, counter);
    }
    return counter;
  }

  window(key: string, now = Date.now()): Window {
    return this.counters.get(key)?.window(now) ?? { lastMinute: 0, lastHour: 0, last24h: 0, sinceStart: 0 };
  }

  forget(prefix: string): void {
    for (const key of this.counters.keys()) if (key.startsWith(prefix)) this.counters.delete(key);
  }
}
