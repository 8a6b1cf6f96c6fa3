/**
 * The broadcast engine: after a message is durably stored, every worker of
 * its queue is woken and delivers it to its listener. It owns the workers
 * (one per listener and queue), registers and removes listeners, attaches
 * foreground `listen` streams, and answers `publish --wait`.
 */
import { randomBytes } from 'node:crypto';
import { DiscueError } from '../protocol/errors.js';
import type {
  Attempt,
  DeliveryState,
  Envelope,
  ListenerInfo,
  ListenerStats,
  RecentDelivery,
  StreamEvent,
  WaitOutcome,
} from '../protocol/wire.js';
import { StatsRegistry } from '../observe/stats.js';
import { lastIdBefore } from '../protocol/ids.js';
import type { DeliveryRecord, ListenerRecord, Store } from '../backend/types.js';
import type { Logger } from '../observe/log.js';
import { CommandSender } from './command.js';
import { HttpSender } from './http.js';
import { underCurrentName } from './queue-name.js';
import { maskUrl } from './redact.js';
import { StreamBinding, StreamSender } from './stream.js';
import type { Sender } from './types.js';
import { Worker } from './worker.js';
import type { WorkerHooks } from './worker.js';

interface Waiter {
  queue: string;
  lastId: string;
  ids: Set<string>;
  workers: Worker[];
  resolve: (outcomes: WaitOutcome[]) => void;
}

export interface SubscribeOptions {
  queues: string[];
  name?: string;
  from: 'new' | 'all';
  /** With from "new": start at this time instead of the queue's end now. */
  sinceMs?: number;
  prefetch: number;
}

export interface Subscription {
  listenerId: string;
  detach(): void;
  ack(tag: number): boolean;
}

export class DeliveryEngine {
  /** listener id → queue → worker */
  private readonly workers = new Map<string, Map<string, Worker>>();
  /** Listeners that exist only while their `listen` is connected. */
  private readonly ephemeral = new Map<string, ListenerRecord>();
  private readonly bindings = new Map<string, StreamBinding>();
  private waiters: Waiter[] = [];
  private readonly hooks: WorkerHooks;
  private stopped = false;
  /** Recent attempts for the live tail of `top`. */
  readonly recent: RecentDelivery[] = [];
  /** Publishes and delivery outcomes over rolling windows. */
  readonly stats = new StatsRegistry();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {
    this.hooks = {
      attempted: (worker, _messageId, attempt) => {
        this.stats.counter(`listener:${worker.listenerId}:${attempt.ok ? 'ok' : 'failed'}`).add();
      },
      retrying: (worker, messageId, attempt) => this.pushRecent(worker, attempt, 'failed', messageId),
      settled: (worker, messageId, state, attempt) => this.onSettled(worker, messageId, state, attempt),
      gone: (worker, reason) => void this.disable(worker.listener, reason),
    };
    store.onAppend((queue, messages) => this.onAppend(queue, messages));
    store.onRemove((queue, ids) => {
      for (const byQueue of this.workers.values()) byQueue.get(queue)?.removed(ids);
    });
    // Queues are ids here: a rename changes nothing the engine holds (senders name the queue as they send).
    store.onQueueEvent((event) => {
      if (event.type === 'created') this.onQueueCreated(event.queue);
      else if (event.type === 'deleted') void this.onQueueDeleted(event.queue, event.removedListeners);
    });
  }

  /** Starts a worker for every registered listener, resuming where each stopped. */
  async start(): Promise<void> {
    for (const record of this.store.deliveries.listeners()) {
      const open = await this.store.deliveries.openDeliveries(record.id);
      this.startWorkers(record, open);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const binding of this.bindings.values()) binding.detach();
    const all: Promise<void>[] = [];
    for (const byQueue of this.workers.values()) for (const worker of byQueue.values()) all.push(worker.stop());
    await Promise.allSettled(all);
    for (const waiter of this.waiters) waiter.resolve(this.outcomes(waiter));
    this.waiters = [];
  }

  // ---- listeners ---------------------------------------------------------

  async register(record: ListenerRecord, from: 'new' | 'all'): Promise<void> {
    if (record.name !== undefined && this.findByName(record.name)) {
      throw new DiscueError('LISTENER_EXISTS', `a listener named "${record.name}" already exists`);
    }
    const cursors = from === 'new' ? record.queues.map((queue) => ({ queue, cursor: this.lastIdOf(queue) })) : [];
    await this.store.deliveries.saveListener(record, cursors);
    this.startWorkers(record, []);
  }

  async remove(record: ListenerRecord): Promise<void> {
    this.stats.forget(`listener:${record.id}:`);
    await this.stopWorkers(record.id);
    this.bindings.get(record.id)?.detach();
    this.bindings.delete(record.id);
    await this.store.deliveries.removeListener(record.id);
  }

  async setState(record: ListenerRecord, state: ListenerRecord['state'], reason?: string): Promise<void> {
    record.state = state;
    if (reason === undefined) delete record.disabledReason;
    else record.disabledReason = reason;
    if (!this.ephemeral.has(record.id)) await this.store.deliveries.saveListener(record);
    for (const worker of this.workers.get(record.id)?.values() ?? []) worker.wake();
    this.checkWaiters();
  }

  /** Finds a listener by id or name. */
  resolve(ref: string): ListenerRecord {
    const record = this.store.deliveries.listener(ref) ?? this.findByName(ref) ?? this.ephemeral.get(ref);
    if (!record) throw new DiscueError('LISTENER_NOT_FOUND', `no listener with id or name "${ref}" (see \`discue listener list\`)`);
    return record;
  }

  list(queue?: string): ListenerRecord[] {
    const all = [...this.store.deliveries.listeners(), ...this.ephemeral.values()];
    return all
      .filter((l) => queue === undefined || l.queues.includes(queue) || l.allQueues)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  info(record: ListenerRecord, withSecret = false): ListenerInfo {
    const { secret, ...rest } = record;
    const info: ListenerInfo = { ...rest };
    if (info.url !== undefined && !withSecret) info.url = maskUrl(info.url);
    if (secret) {
      info.hasSecret = true;
      if (withSecret) info.secret = secret;
    }
    const now = Date.now();
    info.progress = [...(this.workers.get(record.id)?.values() ?? [])].map((w) => w.progress(now));
    if (record.kind === 'stream') info.connected = this.bindings.get(record.id)?.attached ?? false;
    info.stats = this.listenerStats(record, now);
    return info;
  }

  /** Sends dead deliveries again. */
  async retry(filter: { listenerId?: string; messageId?: string; allDead?: boolean }): Promise<number> {
    let count = 0;
    const listeners = filter.listenerId ? [this.resolve(filter.listenerId)] : this.store.deliveries.listeners();
    for (const listener of listeners) {
      let dead: DeliveryRecord[];
      if (filter.messageId) {
        const record = await this.store.deliveries.get(listener.id, filter.messageId);
        if (!record || record.state !== 'dead') {
          throw new DiscueError('DELIVERY_NOT_FOUND', `no dead delivery ${listener.id}/${filter.messageId}`);
        }
        dead = [record];
      } else {
        dead = await this.store.deliveries.deadDeliveries(listener.id);
      }
      for (const record of dead) {
        const worker = this.workers.get(listener.id)?.get(record.queue);
        if (!worker) continue;
        // Saved as pending before the reply: a second `retry --all-dead` does not send it twice,
        // and a restart resumes it (the worker picks up open records behind its cursor).
        const fresh: DeliveryRecord = {
          ...record,
          attempts: [...record.attempts],
          state: 'pending',
          roundStart: record.attempts[record.attempts.length - 1]?.attempt ?? 0,
          updatedAt: new Date().toISOString(),
        };
        delete fresh.nextAttemptAt;
        await this.store.deliveries.saveOpen(fresh);
        worker.retryDead(fresh);
        count++;
      }
    }
    return count;
  }

  // ---- foreground listen -------------------------------------------------

  /** Attaches a `listen` connection: a named (durable) listener or a temporary one. */
  async subscribe(options: SubscribeOptions, emit: (event: StreamEvent) => void): Promise<Subscription> {
    let record: ListenerRecord | undefined = options.name ? this.findByName(options.name) : undefined;
    if (record && record.kind !== 'stream') {
      throw new DiscueError('LISTENER_EXISTS', `"${options.name}" is the name of a ${record.kind} listener`);
    }
    if (record && this.bindings.get(record.id)?.attached) {
      throw new DiscueError('LISTENER_EXISTS', `a listen named "${options.name}" is already connected`);
    }
    if (record && !sameQueues(record, options)) {
      // The same name with other queues: follow what the user asks now, keep positions of shared queues.
      await this.stopWorkers(record.id);
      record.queues = options.queues;
      record.allQueues = options.queues.length === 0;
      await this.store.deliveries.saveListener(
        record,
        record.queues
          .filter((q) => this.store.deliveries.cursor(record!.id, q) === undefined)
          .map((queue) => ({ queue, cursor: options.from === 'new' ? this.startOf(queue, options.sinceMs) : undefined })),
      );
      this.startWorkers(record, []);
    }
    const binding = record ? this.bindings.get(record.id)! : new StreamBinding();
    if (!record) {
      record = {
        id: newListenerId(options.name ? 'l' : 't'),
        kind: 'stream',
        queues: options.queues,
        allQueues: options.queues.length === 0,
        timeoutMs: 0,
        maxAttempts: 1,
        retryDelayMs: 1000,
        concurrency: Math.max(1, options.prefetch),
        state: 'active',
        createdAt: new Date().toISOString(),
      };
      if (options.name) record.name = options.name;
      this.bindings.set(record.id, binding);
      const queues = record.allQueues ? this.store.queueIds() : record.queues;
      const cursors = options.from === 'new' ? queues.map((queue) => ({ queue, cursor: this.startOf(queue, options.sinceMs) })) : [];
      if (options.name) {
        await this.store.deliveries.saveListener(record, cursors);
        this.startWorkers(record, []);
      } else {
        this.ephemeral.set(record.id, record);
        this.startWorkers(record, [], new Map(cursors.map((c) => [c.queue, c.cursor])));
      }
    }
    binding.attach({ emit });
    for (const worker of this.workers.get(record.id)?.values() ?? []) worker.wake();
    const listenerId = record.id;
    return {
      listenerId,
      ack: (tag) => binding.ack(tag),
      detach: () => {
        binding.detach();
        if (this.ephemeral.has(listenerId)) {
          this.ephemeral.delete(listenerId);
          this.bindings.delete(listenerId);
          void this.stopWorkers(listenerId);
        }
        this.checkWaiters();
      },
    };
  }

  // ---- publish --wait ----------------------------------------------------

  /** Resolves when every active listener of `queue` has settled all of `ids`, or at the timeout. */
  waitFor(queue: string, ids: string[], timeoutMs: number): Promise<WaitOutcome[]> {
    const workers: Worker[] = [];
    for (const byQueue of this.workers.values()) {
      const worker = byQueue.get(queue);
      if (worker && this.counts(worker)) workers.push(worker);
    }
    const waiter: Waiter = {
      queue,
      lastId: ids[ids.length - 1]!,
      ids: new Set(ids),
      workers,
      resolve: () => undefined,
    };
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
      this.checkWaiters();
    });
  }

  // ---- internals ---------------------------------------------------------

  private counts(worker: Worker): boolean {
    const l = worker.listener;
    if (l.state !== 'active') return false;
    if (l.kind === 'stream') return this.bindings.get(l.id)?.attached ?? false;
    return true;
  }

  private outcomes(waiter: Waiter): WaitOutcome[] {
    return waiter.workers.map((w) => {
      const dead = [...waiter.ids].some((id) => w.wasDead(id));
      const settled = settledUpTo(w, waiter.lastId);
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

  private checkWaiters(): void {
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => {
      // A listener paused or disconnected meanwhile no longer holds up the wait.
      const holding = waiter.workers.some((w) => this.counts(w) && !settledUpTo(w, waiter.lastId));
      if (holding) return true;
      // One disabled by a 410 refused the message: that is reported, not left out as if paused.
      const reported = waiter.workers.filter((w) => this.counts(w) || settledUpTo(w, waiter.lastId) || refused(w));
      waiter.resolve(this.outcomes({ ...waiter, workers: reported }));
      return false;
    });
  }

  private onSettled(worker: Worker, messageId: string, state: DeliveryState, attempt: Attempt): void {
    if (state === 'dead') this.stats.counter(`listener:${worker.listenerId}:dead`).add();
    if (state === 'delivered' || state === 'dead') this.pushRecent(worker, attempt, state, messageId);
    this.checkWaiters();
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
      for (const worker of byQueue.values()) all.push(worker.refreshPending());
    }
    await Promise.all(all);
  }

  /** Delivery statistics of one listener. */
  listenerStats(record: ListenerRecord, now = Date.now()): ListenerStats {
    let pending = 0;
    let lagMs = 0;
    for (const worker of this.workers.get(record.id)?.values() ?? []) {
      pending += worker.pending;
      lagMs = Math.max(lagMs, worker.lagMs(now));
    }
    return {
      succeeded: this.stats.window(`listener:${record.id}:ok`),
      failed: this.stats.window(`listener:${record.id}:failed`),
      dead: this.stats.window(`listener:${record.id}:dead`),
      pending,
      lagMs,
    };
  }

  /** How many listeners (durable or connected) take messages of a queue. */
  listenerCount(queue: string): number {
    let n = 0;
    for (const byQueue of this.workers.values()) if (byQueue.has(queue)) n++;
    return n;
  }

  private onAppend(queue: string, messages: Envelope[]): void {
    this.stats.counter(`queue:${queue}:added`).add(messages.length);
    for (const byQueue of this.workers.values()) byQueue.get(queue)?.offer(messages);
  }

  private onQueueCreated(queue: string): void {
    const all = [...this.store.deliveries.listeners(), ...this.ephemeral.values()];
    for (const record of all) {
      if (!record.allQueues) continue;
      const byQueue = this.workers.get(record.id);
      if (byQueue?.has(queue)) continue;
      // A new queue is empty: reading it from the start loses nothing.
      this.addWorker(record, queue, undefined, []);
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
      else if (!this.ephemeral.has(lid)) {
        await this.store.deliveries
          .forgetQueueRecords(lid, queue)
          .catch((err: unknown) => this.log.error('clearing delivery records failed', { listener: lid, queue, error: err as Error }));
      }
    }
    this.checkWaiters();
  }

  private startWorkers(record: ListenerRecord, open: DeliveryRecord[], cursors?: Map<string, string | undefined>): void {
    if (this.stopped) return;
    const queues = record.allQueues ? this.store.queueIds() : record.queues;
    for (const queue of queues) {
      if (!this.store.hasQueue(queue)) continue;
      const cursor = cursors ? cursors.get(queue) : this.store.deliveries.cursor(record.id, queue);
      this.addWorker(record, queue, cursor, open);
    }
  }

  private addWorker(record: ListenerRecord, queue: string, cursor: string | undefined, open: DeliveryRecord[]): void {
    let byQueue = this.workers.get(record.id);
    if (!byQueue) {
      byQueue = new Map();
      this.workers.set(record.id, byQueue);
    }
    const persistent = !this.ephemeral.has(record.id);
    const worker = new Worker(
      record,
      queue,
      underCurrentName(this.senderFor(record), () => this.store.queueName(queue)),
      this.store,
      persistent ? this.store.deliveries : undefined,
      this.hooks,
      this.log,
      { cursor, open },
    );
    byQueue.set(queue, worker);
    worker.start();
  }

  private senderFor(record: ListenerRecord): Sender {
    if (record.kind === 'http') return new HttpSender(record);
    if (record.kind === 'exec') return new CommandSender(record);
    let binding = this.bindings.get(record.id);
    if (!binding) {
      binding = new StreamBinding();
      this.bindings.set(record.id, binding);
    }
    return new StreamSender(binding);
  }

  private async stopWorkers(lid: string): Promise<void> {
    const byQueue = this.workers.get(lid);
    this.workers.delete(lid);
    if (byQueue) await Promise.allSettled([...byQueue.values()].map((w) => w.stop()));
  }

  private async disable(record: ListenerRecord, reason: string): Promise<void> {
    this.log.warn('listener disabled', { listener: record.name ?? record.id, reason });
    await this.setState(record, 'disabled', reason);
  }

  private findByName(name: string): ListenerRecord | undefined {
    return this.store.deliveries.byName(name) ?? [...this.ephemeral.values()].find((l) => l.name === name);
  }

  /** Where a "new" listener starts: the queue's end now, or just before `sinceMs`. */
  private startOf(queue: string, sinceMs: number | undefined): string | undefined {
    if (sinceMs === undefined) return this.lastIdOf(queue);
    const before = lastIdBefore(sinceMs);
    const last = this.lastIdOf(queue);
    return last === undefined || last > before ? before : last;
  }

  private lastIdOf(queue: string): string | undefined {
    return this.store.lastPosition(queue);
  }
}

export function newListenerId(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('base64url').replace(/[-_]/g, 'x')}`;
}

/** Whether the worker's listener was disabled because its receiver answered 410 Gone. */
function refused(worker: Worker): boolean {
  return worker.listener.state === 'disabled';
}

/** Whether a worker has settled every message up to `lastId`, in order. */
function settledUpTo(worker: Worker, lastId: string): boolean {
  return worker.cursor !== undefined && worker.cursor >= lastId;
}

function sameQueues(record: ListenerRecord, options: SubscribeOptions): boolean {
  if (options.queues.length === 0) return record.allQueues === true;
  return !record.allQueues && [...record.queues].sort().join(',') === [...options.queues].sort().join(',');
}
