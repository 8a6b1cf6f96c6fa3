/**
 * `publish --wait`: a publish waits until every listener that takes the
 * queue has settled the batch in order (or refused it, or the time is up).
 * Positions are the consumers': a waiter only asks each whether it has
 * settled through the batch's last position.
 */
import type { Position } from '../backend/types.js';
import type { WaitOutcome } from '../protocol/wire.js';
import type { Worker } from './worker.js';

interface Waiter {
  through: Position;
  ids: string[];
  workers: Worker[];
  resolve: (outcomes: WaitOutcome[]) => void;
}

export class Waiters {
  private waiters: Waiter[] = [];

  /** `counts`: whether a worker's listener holds up a wait now (active, and a stream connected). */
  constructor(private readonly counts: (worker: Worker) => boolean) {}

  /** Resolves when each of `workers` has settled through `through` (the ids are the batch's, for dead ones), or at the timeout. */
  wait(workers: Worker[], ids: string[], through: Position, timeoutMs: number): Promise<WaitOutcome[]> {
    const waiter: Waiter = { through, ids, workers: workers.filter(this.counts), resolve: () => undefined };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(this.outcomes(waiter));
      }, timeoutMs);
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
      const settled = (w: Worker) => w.consumer.settledThrough(waiter.through);
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
      const dead = waiter.ids.some((id) => w.consumer.wasDead(id));
      const settled = w.consumer.settledThrough(waiter.through);
      const outcome: WaitOutcome = {
        listener: w.listener.id,
        state: settled ? (dead ? 'dead' : 'delivered') : refused(w) ? 'refused' : 'pending',
      };
      if (w.listener.name) outcome.name = w.listener.name;
      if (outcome.state === 'refused' && w.listener.disabledReason) outcome.reason = w.listener.disabledReason;
      if (outcome.state === 'pending') outcome.health = w.health();
      return outcome;
    });
  }
}

/** Whether the worker's listener was disabled because its receiver answered 410 Gone. */
function refused(worker: Worker): boolean {
  return worker.listener.state === 'disabled';
}
