/**
 * The broadcast engine: one worker per listener and queue, each taking the
 * deliveries its backend consumer hands out. It starts and stops workers as
 * listeners and queues come and go, keeps the statistics, and puts together
 * the listener registry (listeners.ts), `publish --wait` (waiters.ts) and
 * foreground `listen` streams (streams.ts).
 */
import type { Attempt, DeliveryState, ListenerStats, RecentDelivery, WaitOutcome } from '../protocol/wire.js';
import { StatsRegistry } from '../observe/stats.js';
import type { DeliveryRecord, ListenerEvent, ListenerRecord, Position, QueueEvent, StartAt, Store } from '../backend/types.js';
import type { Logger } from '../observe/log.js';
import { CommandSender } from './command.js';
import { Gate } from './gate.js';
import { HttpSender } from './http.js';
import { ListenerRegistry } from './listeners.js';
import { underCurrentName } from './queue-name.js';
import { StreamSender } from './stream.js';
import { Streams } from './streams.js';
import type { Sender } from './types.js';
import { Waiters } from './waiters.js';
import { Worker } from './worker.js';
import type { WorkerHooks } from './worker.js';

export class DeliveryEngine {
  /** listener id → queue → worker */
  private readonly workers = new Map<string, Map<string, Worker>>();
  /** listener id → its rate limit and liveness, shared by its workers */
  private readonly gates = new Map<string, Gate>();
  private readonly hooks: WorkerHooks;
  private stopped = false;
  readonly listeners: ListenerRegistry;
  readonly streams: Streams;
  readonly waiters: Waiters;
  /** Recent attempts for the live tail of `top`. */
  readonly recent: RecentDelivery[] = [];
  /** Publishes and delivery outcomes over rolling windows. */
  readonly stats = new StatsRegistry();
  /** Told of every delivery attempt (the HTTP API's /metrics times them). */
  readonly attemptObservers = new Set<(listenerId: string, messageId: string, attempt: Attempt) => void>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    /** This host's id: a listener pinned to another host (ListenerRecord.host) is not run here. */
    readonly hostId = '',
  ) {
    this.listeners = new ListenerRegistry(store, this);
    this.streams = new Streams(store, this);
    this.waiters = new Waiters((worker) => this.holdsWaits(worker));
    this.hooks = {
      attempted: (worker, messageId, attempt) => {
        this.stats.counter(`listener:${worker.listenerId}:${attempt.ok ? 'ok' : 'failed'}`).add();
        for (const observe of this.attemptObservers) observe(worker.listenerId, messageId, attempt);
      },
      retrying: (worker, messageId, attempt) => this.pushRecent(worker, attempt, 'failed', messageId),
      settled: (worker, messageId, state, attempt) => this.onSettled(worker, messageId, state, attempt),
      gone: (worker, reason) => void this.disable(worker.listener, reason),
    };
    store.onAppend((queue, messages) => this.stats.counter(`queue:${queue}:added`).add(messages.length));
    store.onQueueEvent((event) => void this.onQueueEvent(event));
    store.deliveries.onListenerEvent((event) => void this.onListenerEvent(event));
  }

  /** Whether this daemon runs the listener: any daemon does, unless it is pinned to another host. */
  runsHere(record: ListenerRecord): boolean {
    return record.host === undefined || record.host === this.hostId;
  }

  /** Starts a worker for every registered listener, resuming where each stopped. */
  async start(): Promise<void> {
    for (const record of this.store.deliveries.listeners()) {
      // Read for the listeners' health only: each consumer resumes its own open deliveries.
      const open = await this.store.deliveries.openDeliveries(record.id);
      this.startWorkers(record, undefined, open);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.streams.detachAll();
    const all: Promise<void>[] = [];
    for (const byQueue of this.workers.values()) for (const worker of byQueue.values()) all.push(worker.stop());
    await Promise.allSettled(all);
    this.waiters.stop();
  }

  // ---- what the daemon asks ----------------------------------------------

  /** Resolves when every listener that takes `queue` now has settled through `through` (or skips the batch, by the `names` of its messages), or at the timeout. */
  waitFor(queue: string, ids: string[], names: (string | undefined)[], through: Position, timeoutMs: number): Promise<WaitOutcome[]> {
    const workers: Worker[] = [];
    for (const byQueue of this.workers.values()) {
      const worker = byQueue.get(queue);
      if (worker) workers.push(worker);
    }
    return this.waiters.wait(workers, ids, names, through, timeoutMs);
  }

  /**
   * Before these listeners' (or all) stats are read: looks up, where memory
   * does not hold it, the oldest unsettled message each lag is measured
   * from (one read per worker with a backlog, once per position). Pending
   * counts themselves are kept in memory and cost nothing here.
   */
  async refreshPending(records?: ListenerRecord[]): Promise<void> {
    const ids = records ? new Set(records.map((r) => r.id)) : undefined;
    const all: Promise<void>[] = [];
    for (const [lid, byQueue] of this.workers) {
      if (ids && !ids.has(lid)) continue;
      for (const worker of byQueue.values()) all.push(worker.consumer.refresh());
    }
    await Promise.all(all);
  }

  /** Delivery statistics of one listener. */
  listenerStats(record: ListenerRecord, now = Date.now()): ListenerStats {
    let pending = 0;
    let lagMs = 0;
    for (const worker of this.workersOf(record.id)) {
      const progress = worker.consumer.progress(now);
      pending += progress.pending;
      lagMs = Math.max(lagMs, progress.lagMs);
    }
    return {
      succeeded: this.stats.window(`listener:${record.id}:ok`),
      failed: this.stats.window(`listener:${record.id}:failed`),
      dead: this.stats.window(`listener:${record.id}:dead`),
      pending,
      lagMs,
    };
  }

  /** How many listeners (stored or connected) take messages of a queue. */
  listenerCount(queue: string): number {
    let n = 0;
    for (const byQueue of this.workers.values()) if (byQueue.has(queue)) n++;
    return n;
  }

  // ---- workers -----------------------------------------------------------

  workersOf(listenerId: string): Worker[] {
    return [...(this.workers.get(listenerId)?.values() ?? [])];
  }

  /** The listener's state changed, or its stream connected: its workers look again. */
  wake(listenerId: string): void {
    for (const worker of this.workersOf(listenerId)) worker.wake();
  }

  /**
   * A worker for each queue the listener takes. A stored listener's
   * consumers start where the backend keeps its positions; an unnamed
   * stream's at `start`.
   */
  startWorkers(record: ListenerRecord, start?: StartAt, open: DeliveryRecord[] = []): void {
    if (this.stopped || !this.runsHere(record)) return;
    const queues = record.allQueues ? this.store.queueIds() : record.queues;
    for (const queue of queues) if (this.store.hasQueue(queue)) this.addWorker(record, queue, start, open);
  }

  async stopWorkers(listenerId: string): Promise<void> {
    const byQueue = this.workers.get(listenerId);
    this.workers.delete(listenerId);
    this.gates.delete(listenerId);
    if (byQueue) await Promise.allSettled([...byQueue.values()].map((w) => w.stop()));
  }

  private addWorker(record: ListenerRecord, queue: string, start: StartAt | undefined, open: DeliveryRecord[]): void {
    let byQueue = this.workers.get(record.id);
    if (!byQueue) {
      byQueue = new Map();
      this.workers.set(record.id, byQueue);
    }
    if (byQueue.has(queue)) return;
    const consumer = this.store.consumer(record, queue, {
      durable: !this.listeners.unnamed.has(record.id),
      start,
      maxInFlight: Math.max(1, record.concurrency),
      filters: record.filters,
      onPassed: () => this.waiters.check(),
    });
    const sender = underCurrentName(this.senderFor(record), () => this.store.queueName(queue));
    let gate = this.gates.get(record.id);
    if (!gate) {
      gate = new Gate(record);
      this.gates.set(record.id, gate);
    }
    const worker = new Worker(record, queue, sender, consumer, this.hooks, this.log, open, gate);
    byQueue.set(queue, worker);
    worker.start();
  }

  private senderFor(record: ListenerRecord): Sender {
    if (record.kind === 'http') return new HttpSender(record);
    if (record.kind === 'exec') return new CommandSender(record);
    return new StreamSender(this.streams.connection(record.id));
  }

  /** Whether a worker's listener holds up a `publish --wait`: active, and for a stream, connected. */
  private holdsWaits(worker: Worker): boolean {
    const l = worker.listener;
    if (l.state !== 'active') return false;
    if (l.kind === 'stream') return this.streams.connected(l.id);
    return true;
  }

  private onSettled(worker: Worker, messageId: string, state: DeliveryState, attempt: Attempt): void {
    if (state === 'dead') this.stats.counter(`listener:${worker.listenerId}:dead`).add();
    if (state === 'delivered' || state === 'dead') this.pushRecent(worker, attempt, state, messageId);
    this.waiters.check();
  }

  private pushRecent(worker: Worker, attempt: Attempt, state: DeliveryState, messageId: string): void {
    this.recent.push({
      at: attempt.at,
      listener: worker.listener.name ?? worker.listenerId,
      queue: worker.queue,
      messageId,
      state,
      attempt,
    });
    // Trimmed in bulk, not per push: shifting a 200-entry array on every delivery shows in profiles.
    if (this.recent.length > 400) this.recent.splice(0, this.recent.length - 200);
  }

  private async onQueueEvent(event: QueueEvent): Promise<void> {
    if (event.type === 'created') this.onQueueCreated(event.queue);
    else if (event.type === 'deleted') await this.onQueueDeleted(event.queue, event.removedListeners);
  }

  /**
   * A listener added, changed or removed by another daemon on the shared
   * store: its workers start, follow its queues, see its state, or stop.
   */
  private async onListenerEvent(event: ListenerEvent): Promise<void> {
    if (this.stopped) return;
    if (event.type === 'removed') {
      this.stats.forget(`listener:${event.id}:`);
      await this.stopWorkers(event.id);
      this.waiters.check();
      return;
    }
    const { record, previousQueues } = event;
    if (!this.runsHere(record)) {
      // Pinned to another host now (a named listen connected there).
      await this.stopWorkers(record.id);
      return;
    }
    if (previousQueues !== undefined) {
      for (const queue of previousQueues) {
        if (record.queues.includes(queue)) continue;
        const worker = this.workers.get(record.id)?.get(queue);
        this.workers.get(record.id)?.delete(queue);
        await worker?.stop();
      }
    }
    this.startWorkers(record);
    this.wake(record.id);
    this.waiters.check();
  }

  private onQueueCreated(queue: string): void {
    if (this.stopped) return;
    for (const record of this.listeners.all()) {
      // A new queue is empty: reading it from the start loses nothing.
      if (record.allQueues && this.runsHere(record)) this.addWorker(record, queue, 'all', []);
    }
  }

  private async onQueueDeleted(queue: string, removedListeners: string[]): Promise<void> {
    this.stats.forget(`queue:${queue}:`);
    for (const lid of removedListeners) this.stats.forget(`listener:${lid}:`);
    for (const [lid, byQueue] of this.workers) {
      const worker = byQueue.get(queue);
      if (!worker) continue;
      byQueue.delete(queue);
      await worker.stop();
      if (removedListeners.includes(lid)) this.workers.delete(lid);
      // A listener that stays (other queues) keeps no delivery state of the deleted queue.
      else if (!this.listeners.unnamed.has(lid)) {
        await this.store.deliveries
          .forgetQueueRecords(lid, queue)
          .catch((err: unknown) => this.log.error('clearing delivery records failed', { listener: lid, queue, error: err as Error }));
      }
    }
    this.waiters.check();
  }

  private async disable(record: ListenerRecord, reason: string): Promise<void> {
    this.log.warn('listener disabled', { listener: record.name ?? record.id, reason });
    await this.listeners.setState(record, 'disabled', reason);
  }
}
