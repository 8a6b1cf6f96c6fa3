/**
 * One listener × one queue: reads the queue from the listener's cursor and
 * delivers each message in order (or with up to `concurrency` in flight),
 * retrying with backoff until success or death. Workers share nothing but
 * the database, so a slow or failing listener never delays another.
 *
 * The cursor on disk only moves past messages that are settled (delivered or
 * dead) and everything before them, so after a crash a worker resumes at the
 * first message that was not settled: duplicates only for what was in flight.
 */
import type { Attempt, DeliveryState, Envelope, ListenerProgress } from '../protocol/messages.js';
import type { DeliveryRecord, DeliveryStore, ListenerRecord } from '../store/deliveries.js';
import type { Store } from '../store/types.js';
import type { Logger } from '../daemon/log.js';
import { backoffMs } from './backoff.js';
import { Signal } from './signal.js';
import type { Sender } from './types.js';

const PAGE = 64;
const RECENT_DEAD = 10_000;
/** Pending counts stop here ("10000 or more"): counting a huge backlog for a dashboard is not worth it. */
export const PENDING_CAP = 10_000;

export interface WorkerHooks {
  /** Every attempt, successful or not (statistics). */
  attempted?(worker: Worker, messageId: string, attempt: Attempt): void;
  /** A failed attempt that will be tried again. */
  retrying?(worker: Worker, messageId: string, attempt: Attempt): void;
  /** A message was settled (in order or not). */
  settled(worker: Worker, messageId: string, state: DeliveryState, attempt: Attempt): void;
  /** The receiver said 410 Gone. */
  gone(worker: Worker, reason: string): void;
}

interface Slot {
  message: Envelope;
  done: boolean;
}

export class Worker {
  readonly listenerId: string;
  private readPos: string | undefined;
  private cursorId: string | undefined;
  private buffer: Envelope[] = [];
  /** Messages handed out in order whose outcome is not settled yet, oldest first. */
  private window: Slot[] = [];
  /** In-order messages to send again first (interrupted by pause or disconnect). */
  private redo: Slot[] = [];
  /** Dead deliveries a user asked to retry: sent first, outside the order. */
  private retries: DeliveryRecord[] = [];
  private readonly open = new Map<string, DeliveryRecord>();
  private readonly signal = new Signal();
  private readonly abort = new AbortController();
  private reading: Promise<void> | undefined;
  private caughtUp = false;
  /** Appends not taken directly (see offer): a read that began before one cannot say we are caught up. */
  private missedOffers = 0;
  private stopped = false;
  private slots: Promise<void>[] = [];
  /** Writes handed to the group committer and not yet on disk. */
  private readonly persisting = new Set<Promise<void>>();
  private readonly recentDead = new Set<string>();
  readonly stats = { delivered: 0, failedAttempts: 0, dead: 0, inFlight: 0, lastDeliveryAt: '', lastError: '' };
  /** Messages after the read position, counted on demand (capped) for statistics. */
  private unread = 0;
  private unreadCountedAt = 0;

  constructor(
    readonly listener: ListenerRecord,
    readonly queue: string,
    private readonly sender: Sender,
    private readonly store: Store,
    private readonly deliveries: DeliveryStore | undefined,
    private readonly hooks: WorkerHooks,
    private readonly log: Logger,
    start: { cursor: string | undefined; open?: DeliveryRecord[] },
  ) {
    this.listenerId = listener.id;
    this.cursorId = start.cursor;
    this.readPos = start.cursor;
    for (const record of start.open ?? []) {
      if (record.queue !== queue) continue;
      // Behind the cursor means out of order: a dead delivery being retried when the daemon stopped.
      if (start.cursor !== undefined && record.messageId <= start.cursor) this.retries.push(record);
      else this.open.set(record.messageId, record);
    }
  }

  /** Last message id settled in order. */
  get cursor(): string | undefined {
    return this.cursorId;
  }

  start(): void {
    const n = Math.max(1, this.listener.concurrency);
    for (let i = 0; i < n; i++) this.slots.push(this.loop());
  }

  wake(): void {
    this.signal.wake();
  }

  /** Stops after in-flight attempts are aborted; nothing unsettled is acknowledged. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.signal.wake();
    await Promise.allSettled(this.slots);
    await Promise.allSettled([...this.persisting]);
  }

  /** New messages appended to the queue: take them without a disk read when caught up. */
  offer(messages: Envelope[]): void {
    if (this.caughtUp && !this.reading && this.buffer.length === 0) {
      const fresh = this.readPos === undefined ? messages : messages.filter((m) => m.id > this.readPos!);
      if (fresh.length > 0) {
        for (const m of fresh) this.buffer.push(m);
        this.readPos = fresh[fresh.length - 1]!.id;
      }
    } else {
      this.caughtUp = false;
      this.missedOffers++;
    }
    this.signal.wake();
  }

  /** Sends a dead delivery again, out of order; `record` starts its fresh round (see DeliveryStore.retry). */
  retryDead(record: DeliveryRecord): void {
    this.recentDead.delete(record.messageId);
    this.retries.push(record);
    this.signal.wake();
  }

  wasDead(messageId: string): boolean {
    return this.recentDead.has(messageId);
  }

  progress(): ListenerProgress {
    const p: ListenerProgress = {
      queue: this.queue,
      inFlight: this.stats.inFlight,
      delivered: this.stats.delivered,
      failedAttempts: this.stats.failedAttempts,
      dead: this.stats.dead,
    };
    if (this.cursorId) p.cursor = this.cursorId;
    if (this.stats.lastDeliveryAt) p.lastDeliveryAt = this.stats.lastDeliveryAt;
    if (this.stats.lastError) p.lastError = this.stats.lastError;
    return p;
  }

  private get active(): boolean {
    return this.listener.state === 'active';
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const version = this.signal.version;
      if (!this.active) {
        await this.signal.wait(version);
        continue;
      }
      const retry = this.retries.shift();
      if (retry) {
        const message = await this.store.getMessage(this.queue, retry.messageId).catch(() => undefined);
        if (message) await this.deliver({ message, done: false }, retry, false);
        else {
          // Deleted (or expired) since it died: drop the record, or it would stay pending for ever.
          this.log.warn('retry skipped: message no longer stored', { listener: this.listenerId, message: retry.messageId });
          this.persist(() => this.deliveries?.forget(this.listenerId, retry.messageId));
        }
        continue;
      }
      let slot = this.redo.shift();
      if (!slot) {
        let message: Envelope | undefined;
        try {
          message = await this.next();
        } catch (err) {
          if (this.stopped) return;
          this.log.error('reading the queue failed', { listener: this.listenerId, queue: this.queue, error: err as Error });
          await this.signal.wait(version, 1000);
          continue;
        }
        if (!message) {
          await this.signal.wait(version);
          continue;
        }
        slot = { message, done: false };
        this.window.push(slot);
      }
      await this.deliver(slot, this.open.get(slot.message.id), true);
    }
  }

  /** The next message after the read position, one page at a time. */
  private async next(): Promise<Envelope | undefined> {
    while (this.buffer.length === 0) {
      if (this.reading) {
        await this.reading;
        continue;
      }
      let page: Envelope[] = [];
      let damaged: string[] = [];
      const missedBefore = this.missedOffers;
      this.reading = (async () => {
        ({ messages: page, damaged } = await this.store.readMessages(this.queue, { afterId: this.readPos, limit: PAGE }));
      })();
      try {
        await this.reading;
      } finally {
        this.reading = undefined;
      }
      if (this.buffer.length > 0) break;
      const fresh = this.readPos === undefined ? page : page.filter((m) => m.id > this.readPos!);
      for (const m of fresh) this.buffer.push(m);
      if (fresh.length > 0) this.readPos = fresh[fresh.length - 1]!.id;
      for (const id of damaged) this.damaged(id);
      const lastDamaged = damaged[damaged.length - 1];
      if (lastDamaged !== undefined && (this.readPos === undefined || lastDamaged > this.readPos)) this.readPos = lastDamaged;
      // Messages appended while the read was in flight may be missing from its page: only a
      // read that no append raced may hand over to the fresh-append path, or those are skipped.
      this.caughtUp = page.length < PAGE && this.missedOffers === missedBefore;
      if (fresh.length === 0) return undefined;
    }
    return this.buffer.shift();
  }

  /** Recounts the unread backlog, at most once a second and up to PENDING_CAP (statistics only). */
  async refreshPending(): Promise<void> {
    if (Date.now() - this.unreadCountedAt < 1000) return;
    this.unreadCountedAt = Date.now();
    try {
      const after = await this.store.countMessages(this.queue, { afterId: this.readPos, limit: PENDING_CAP });
      this.unread = Math.min(PENDING_CAP, after + this.buffer.length);
    } catch {
      this.unread = 0;
    }
  }

  /** Messages not yet settled: in flight plus (approximately) not yet read. */
  get pending(): number {
    return this.unread + this.window.length;
  }

  private async deliver(slot: Slot, existing: DeliveryRecord | undefined, inOrder: boolean): Promise<void> {
    const { message } = slot;
    const record: DeliveryRecord = existing
      ? { ...existing, attempts: [...existing.attempts] }
      : {
          listenerId: this.listenerId,
          queue: this.queue,
          messageId: message.id,
          state: 'pending',
          attempts: [],
          updatedAt: new Date().toISOString(),
        };
    this.stats.inFlight++;
    try {
      // Resumed after a restart (or a pause) in the middle of its backoff: the receiver's
      // Retry-After and the backoff still hold; sending at once would hammer it on every restart.
      const due = record.nextAttemptAt === undefined ? Number.NaN : Date.parse(record.nextAttemptAt);
      if (due > Date.now()) await this.sleep(due - Date.now());
      for (;;) {
        if (this.stopped || !this.active) {
          this.park(slot, record, inOrder);
          return;
        }
        const attemptNo = (record.attempts[record.attempts.length - 1]?.attempt ?? 0) + 1;
        // Counted from the start of this round: a retried dead delivery gets max-attempts again.
        const inRound = attemptNo - (record.roundStart ?? 0);
        const started = Date.now();
        const result = await this.sender.send(message, attemptNo, this.abort.signal);
        if (result.interrupted) {
          // The receiver went away mid-delivery: not an attempt; send it again when it is back.
          this.park(slot, record, inOrder);
          if (!this.stopped) await this.signal.wait(this.signal.version);
          return;
        }
        if (this.stopped && !result.ok) {
          // Aborted by shutdown: not the receiver's fault, not counted.
          return;
        }
        const attempt: Attempt = {
          attempt: attemptNo,
          at: new Date(started).toISOString(),
          durationMs: Date.now() - started,
          ok: result.ok,
        };
        if (result.status !== undefined) attempt.status = result.status;
        if (result.exitCode !== undefined) attempt.exitCode = result.exitCode;
        if (result.signal !== undefined) attempt.signal = result.signal;
        if (result.error !== undefined) attempt.error = result.error;
        if (result.output) attempt.output = result.output;
        record.attempts.push(attempt);
        this.hooks.attempted?.(this, message.id, attempt);
        record.updatedAt = new Date().toISOString();
        this.stats.lastDeliveryAt = record.updatedAt;

        if (result.ok) {
          record.state = 'delivered';
          delete record.nextAttemptAt;
          this.stats.delivered++;
          this.settle(slot, record, inOrder, attempt);
          return;
        }
        this.stats.failedAttempts++;
        this.stats.lastError = result.error ?? 'failed';
        if (result.gone) {
          record.state = 'failed';
          this.open.set(message.id, record);
          this.persist(() => this.deliveries?.saveOpen(record));
          this.park(slot, record, inOrder);
          this.hooks.gone(this, `the receiver answered 410 Gone at ${attempt.at}`);
          return;
        }
        if (inRound >= this.listener.maxAttempts) {
          record.state = 'dead';
          delete record.nextAttemptAt;
          this.stats.dead++;
          this.recentDead.add(message.id);
          if (this.recentDead.size > RECENT_DEAD) this.recentDead.delete(this.recentDead.values().next().value!);
          this.log.warn('delivery dead', { listener: this.listener.name ?? this.listenerId, message: message.id, attempts: attemptNo });
          this.settle(slot, record, inOrder, attempt);
          return;
        }
        this.hooks.retrying?.(this, message.id, attempt);
        const delay = Math.max(backoffMs(inRound + 1, this.listener.retryDelayMs), result.retryAfterMs ?? 0);
        record.state = 'failed';
        record.nextAttemptAt = new Date(Date.now() + delay).toISOString();
        this.open.set(message.id, record);
        // Saved so that a restart keeps counting attempts from here.
        this.persist(() => this.deliveries?.saveOpen(record));
        await this.sleep(delay);
      }
    } finally {
      this.stats.inFlight--;
    }
  }

  /**
   * Puts an interrupted delivery back to be sent first when the worker runs
   * again. Kept sorted by message id: with several slots in flight, each
   * parks its own message, in whatever order their attempts return, and the
   * listener must still get them in publish order.
   */
  private park(slot: Slot, record: DeliveryRecord, inOrder: boolean): void {
    if (inOrder) insertSorted(this.redo, slot, (s) => s.message.id);
    else insertSorted(this.retries, record, (r) => r.messageId);
  }

  /**
   * A stored message that failed its checksum cannot be sent as published:
   * it is recorded dead at once, with the reason, and never delivered. The
   * cursor moves past it with the next message settled in order.
   */
  private damaged(messageId: string): void {
    if (this.recentDead.has(messageId)) return;
    const at = new Date().toISOString();
    const error = 'the stored message is damaged (checksum mismatch) and cannot be delivered';
    const record: DeliveryRecord = {
      listenerId: this.listenerId,
      queue: this.queue,
      messageId,
      state: 'dead',
      attempts: [{ attempt: 1, at, durationMs: 0, ok: false, error }],
      updatedAt: at,
    };
    this.stats.dead++;
    this.stats.lastError = error;
    this.recentDead.add(messageId);
    if (this.recentDead.size > RECENT_DEAD) this.recentDead.delete(this.recentDead.values().next().value!);
    this.log.error('delivery dead: stored message damaged', { listener: this.listener.name ?? this.listenerId, message: messageId });
    this.persist(() => this.deliveries?.settle(record, undefined));
  }

  private settle(slot: Slot, record: DeliveryRecord, inOrder: boolean, attempt: Attempt): void {
    this.open.delete(slot.message.id);
    let cursor: string | undefined;
    if (inOrder) {
      slot.done = true;
      while (this.window.length > 0 && this.window[0]!.done) cursor = this.window.shift()!.message.id;
      if (cursor !== undefined) this.cursorId = cursor;
    }
    this.persist(() => this.deliveries?.settle(record, cursor));
    this.hooks.settled(this, slot.message.id, record.state, attempt);
  }

  /**
   * Hands a write to the group committer without waiting for it: the next
   * delivery starts while this one's ack is synced, and acks of all workers
   * share fsyncs. The committer applies writes in call order, so the cursor
   * on disk never moves backwards.
   */
  private persist(write: () => Promise<void> | undefined): void {
    const pending = write();
    if (!pending) return;
    const tracked = pending.catch((err: unknown) =>
      this.log.error('saving delivery state failed', { listener: this.listenerId, error: err as Error }),
    );
    this.persisting.add(tracked);
    void tracked.then(() => this.persisting.delete(tracked));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const version = this.signal.version;
      const timer = setTimeout(done, ms);
      const onAbort = () => done();
      const abortSignal = this.abort.signal;
      abortSignal.addEventListener('abort', onAbort, { once: true });
      // Pausing wakes the signal: stop sleeping so the loop can park the message.
      const watch = () => {
        if (finished) return;
        if (!this.active || this.stopped) done();
        else void this.signal.wait(this.signal.version).then(watch);
      };
      void this.signal.wait(version).then(watch);
      let finished = false;
      function done() {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        abortSignal.removeEventListener('abort', onAbort);
        resolve();
      }
    });
  }
}

function insertSorted<T>(list: T[], item: T, key: (item: T) => string): void {
  const k = key(item);
  let i = list.length;
  while (i > 0 && key(list[i - 1]!) > k) i--;
  list.splice(i, 0, item);
}
