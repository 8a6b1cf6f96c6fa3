/**
 * What a listener's sends wait for before each attempt, shared by its
 * workers (one per queue) and their concurrent slots: its rate limit (a
 * token bucket holding one token, so sends are spaced evenly) and, with a
 * liveness URL, its receiver being alive.
 */
import { parseRate } from '../protocol/choose.js';
import { LIVENESS_FIRST_BACKOFF_MS, LIVENESS_MAX_BACKOFF_MS, LIVENESS_TIMEOUT_MS } from '../protocol/defaults.js';
import type { ListenerRecord } from '../backend/types.js';
import { probe } from './http.js';

export class Gate {
  /** Time between two sends (ms); 0 without a rate limit. */
  private readonly interval: number;
  /** When the next send may start: reserved synchronously, so concurrent slots never share a token. */
  private nextSendAt = 0;
  /** Slots waiting for a token now. */
  private waitingForToken = 0;
  /** The receiver's state by its liveness URL: undefined until checked. */
  liveness: 'alive' | 'down' | undefined;
  /** The checks running while it is down (one for all slots). */
  private recovering: Promise<void> | undefined;

  constructor(private readonly listener: ListenerRecord) {
    const rate = listener.rate === undefined ? undefined : parseRate(listener.rate);
    this.interval = rate ? rate.perMs / rate.count : 0;
  }

  /** Waiting for its rate limit: shown as throttled, never as failing. */
  get throttled(): boolean {
    return this.waitingForToken > 0;
  }

  /** Nothing to wait for (no rate limit, receiver not known to be down): the worker skips `ready`, an await per delivery. */
  get open(): boolean {
    return this.interval === 0 && this.recovering === undefined;
  }

  /** Resolves when a send may start: the receiver is not known to be down, and a token is free. */
  async ready(signal: AbortSignal): Promise<void> {
    if (this.recovering) await this.recovering;
    if (this.interval === 0 || signal.aborted) return;
    const now = Date.now();
    const at = Math.max(now, this.nextSendAt);
    this.nextSendAt = at + this.interval;
    if (at <= now) return;
    this.waitingForToken++;
    try {
      await sleep(at - now, signal);
    } finally {
      this.waitingForToken--;
    }
  }

  /**
   * After a failed send: whether the receiver is alive (no liveness URL:
   * always). When it is not, checks go on with backoff until it answers
   * 2xx; `ready` waits for that, so no attempt is spent meanwhile.
   */
  async alive(signal: AbortSignal): Promise<boolean> {
    const url = this.listener.livenessUrl;
    if (url === undefined) return true;
    if (this.recovering) return false;
    if (await probe(url, LIVENESS_TIMEOUT_MS, signal)) {
      this.liveness = 'alive';
      return true;
    }
    if (signal.aborted) return true;
    this.liveness = 'down';
    this.recovering ??= this.recover(url, signal).finally(() => (this.recovering = undefined));
    return false;
  }

  private async recover(url: string, signal: AbortSignal): Promise<void> {
    let backoff = LIVENESS_FIRST_BACKOFF_MS;
    while (!signal.aborted) {
      await sleep(backoff, signal);
      if (await probe(url, LIVENESS_TIMEOUT_MS, signal)) {
        this.liveness = 'alive';
        return;
      }
      backoff = Math.min(backoff * 2, LIVENESS_MAX_BACKOFF_MS);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
