/**
 * `publish --wait`: a publish waits until every listener that takes the
 * queue has settled the batch in order (or refused it, or the time is up).
 * Positions are the consumers': a waiter only asks each whether it has
 * settled through the batch's last position.
 */
import type { Position } from '../backend/types.js';
import { nameMatcher } from '../protocol/choose.js';
import type { WaitOutcome } from '../protocol/wire.js';
import type { Worker } from './worker.js';

/**
 * The longest delay Node's timers take (2^31-1 ms, 24.8 days): past it a timer
 * fires after 1 ms, so `publish --wait` with a longer timeout would end at once.
 * A longer wait is capped here: no wait runs that long in practice.
 */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  through: Position;
  ids: string[];
  workers: Worker[];
  /** Workers whose listener's filters take none of the batch: reported, never waited for. */
  skipped: Set<Worker>;
  resolve: (outcomes: WaitOutcome[]) => void;
}

export class Waiters {
  private waiters: Waiter[] = [];

  /** `counts`: whether a worker's listener holds up a wait now (active, and a stream connected). */
  constructor(private readonly counts: (worker: Worker) => boolean) {}

  /**
   * Resolves when each of `workers` has settled through `through` (the ids
   * are the batch's, for dead ones), or at the timeout. A listener whose
   * filters take none of the batch (`names`, its messages' names) is not
   * waited for: it is reported as skipped, not as having the message.
   */
  wait(workers: Worker[], ids: string[], names: (string | undefined)[], through: Position, timeoutMs: number): Promise<WaitOutcome[]> {
    const counted = workers.filter(this.counts);
    const skipped = new Set(counted.filter((w) => !takesAny(w, names)));
    const waiter: Waiter = { through, ids, workers: counted, skipped, resolve: () => undefined };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(this.outcomes(waiter));
      }, Math.min(timeoutMs, LONGEST_TIMER_MS));
      waiter.resolve = (outcomes) => {
        clearTimeout(timer);
        resolve(outcomes);
      };
      this.waiters.push(waiter);
      this.check();
    });
  }

  /** After anything that may end a wait: a settle, a pause, a disconnect, a queue gone. */
  check(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => {
      const settled = (w: Worker) => waiter.skipped.has(w) || w.consumer.settledThrough(waiter.through);
      // A listener paused or disconnected meanwhile no longer holds up the wait.
      const holding = waiter.workers.some((w) => this.counts(w) && !settled(w));
      if (holding) return true;
      // One disabled by a 410 refused the message: that is reported, not left out as if paused.
      const reported = waiter.workers.filter((w) => this.counts(w) || settled(w) || refused(w));
      waiter.resolve(this.outcomes({ ...waiter, workers: reported }));
      return false;
    });
  }

  /** Answers every wait with what is known now (the daemon is stopping). */
  stop(): void {
    for (const waiter of this.waiters) waiter.resolve(this.outcomes(waiter));
    this.waiters = [];
  }

  private outcomes(waiter: Waiter): WaitOutcome[] {
    return waiter.workers.map((w) => {
      if (waiter.skipped.has(w)) return named(w, { listener: w.listener.id, state: 'skipped' });
      const dead = waiter.ids.some((id) => w.consumer.wasDead(id));
      const settled = w.consumer.settledThrough(waiter.through);
      const outcome: WaitOutcome = {
        listener: w.listener.id,
        state: settled ? (dead ? 'dead' : 'delivered') : refused(w) ? 'refused' : 'pending',
      };
      named(w, outcome);
      if (outcome.state === 'refused' && w.listener.disabledReason) outcome.reason = w.listener.disabledReason;
      if (outcome.state === 'pending') outcome.health = w.health();
      return outcome;
    });
  }
}

/** Whether the listener's filters take any of these names (no filters: every one). */
function takesAny(worker: Worker, names: (string | undefined)[]): boolean {
  const matches = nameMatcher(worker.listener.filters);
  return !matches || names.some(matches);
}

function named(worker: Worker, outcome: WaitOutcome): WaitOutcome {
  if (worker.listener.name) outcome.name = worker.listener.name;
  return outcome;
}

/** Whether the worker's listener was disabled because its receiver answered 410 Gone. */
function refused(worker: Worker): boolean {
  return worker.listener.state === 'disabled';
}
