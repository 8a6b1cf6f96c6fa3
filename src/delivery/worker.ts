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
import type { Attempt, DeliveryState, Envelope, ListenerHealth, ListenerProgress } from '../protocol/wire.js';
import type { Deliveries, DeliveryRecord, ListenerRecord, Store } from '../backend/types.js';
import type { Logger } from '../observe/log.js';
import { backoffMs } from './backoff.js';
import { Signal } from './signal.js';
import type { Sender } from './types.js';

const PAGE = 64;
const RECENT_DEAD = 10_000;
/**
 * Fresh appends kept in memory while the worker is caught up. Beyond this
 * many buffered envelopes it stops taking them and reads them from disk
 * later, so a stalled receiver cannot make the daemon hold a whole burst.
 */
export const MAX_BUFFER = 1000;

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
  /** Deleted from the queue after it was read: already taken off the backlog count. */
  removed?: boolean;
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
  /** Health: the last attempt's outcome and the failed attempts since the last success. */
  private lastOk: boolean | undefined;
  private failuresInRow = 0;
  /** Deliveries waiting out a backoff: message id → when they are tried again (ms). */
  private readonly retryAt = new Map<string, number>();
  /**
   * Stored messages after the cursor (the backlog), kept up to date from
   * appends, settles and removals; undefined until the first count is done.
   */
  private backlog: number | undefined;
  /** While the first count runs: what changed meanwhile (see countBacklog). */
  private counting: { appended: { firstId: string; lastId: string; n: number }[]; settled: number } | undefined;
  /** Ids removed from the queue while a page read was in flight: the page may still hold them. */
  private removedWhileReading: Set<string> | undefined;
  /** The first message after the read position, looked up for the lag (valid while readPos is `after`). */
  private head: { after: string | undefined; message: Envelope | undefined } | undefined;

  constructor(
    readonly listener: ListenerRecord,
    readonly queue: string,
    private readonly sender: Sender,
    private readonly store: Store,
    private readonly deliveries: Deliveries | undefined,
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
      this.resumeHealth(record);
    }
  }

  /**
   * A delivery left failing by the previous daemon: its failures in a row
   * count from the start, or after a restart a listener failing for hours
   * would look healthy until its next attempt (which may be minutes away).
   */
  private resumeHealth(record: DeliveryRecord): void {
    let failures = 0;
    for (let i = record.attempts.length - 1; i >= 0 && !record.attempts[i]!.ok; i--) failures++;
    if (failures <= this.failuresInRow) return;
    this.failuresInRow = failures;
    this.lastOk = false;
    this.stats.lastError = record.attempts[record.attempts.length - 1]!.error ?? 'failed';
  }

  /** Last message id settled in order. */
  get cursor(): string | undefined {
    return this.cursorId;
  }

  start(): void {
    const n = Math.max(1, this.listener.concurrency);
    for (let i = 0; i < n; i++) this.slots.push(this.loop());
    void this.countBacklog();
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

  /**
   * New messages appended to the queue: while caught up, take them into the
   * buffer (up to MAX_BUFFER) so that live delivery never reads the disk.
   * Caught up means every message after the read position is still to be
   * offered here, so taking the offers in order skips and repeats nothing.
   */
  offer(messages: Envelope[]): void {
    const last = messages[messages.length - 1];
    if (last === undefined) return;
    // New ids are above every cursor: all of them join the backlog.
    if (this.counting) this.counting.appended.push({ firstId: messages[0]!.id, lastId: last.id, n: messages.length });
    else if (this.backlog !== undefined) this.backlog += messages.length;
    if (this.caughtUp && !this.reading) {
      const fresh = this.readPos === undefined ? messages : messages.filter((m) => m.id > this.readPos!);
      const taken = Math.min(fresh.length, MAX_BUFFER - this.buffer.length);
      for (let i = 0; i < taken; i++) this.buffer.push(fresh[i]!);
      if (taken > 0) this.readPos = fresh[taken - 1]!.id;
      // The rest stays on disk after the read position: the next read takes it.
      if (taken < fresh.length) this.caughtUp = false;
    } else {
      this.caughtUp = false;
      this.missedOffers++;
    }
    this.signal.wake();
  }

  /**
   * Messages removed from the queue (retention, purge, trim, delete), oldest
   * first. Takes them off the backlog count and out of the buffer: a message
   * purged before it was sent is not sent.
   */
  removed(ids: string[]): void {
    const cursor = this.cursorId;
    // Retention usually removes only what every listener is past: nothing to do then.
    if (ids.length === 0 || (cursor !== undefined && ids[ids.length - 1]! <= cursor)) return;
    const after = cursor === undefined ? ids : ids.filter((id) => id > cursor);
    if (after.length === 0) return;
    if (this.counting) uncountRemoved(this.counting.appended, after);
    else if (this.backlog !== undefined) this.backlog = Math.max(0, this.backlog - after.length);
    const gone = new Set(after);
    for (const slot of this.window) if (gone.has(slot.message.id)) slot.removed = true;
    if (this.buffer.length > 0) this.buffer = this.buffer.filter((m) => !gone.has(m.id));
    if (this.reading) for (const id of after) if (this.readPos === undefined || id > this.readPos) this.removedWhileReading?.add(id);
    this.head = undefined;
  }

  /** Sends a dead delivery again, out of order; `record` starts its fresh round (see DeliveryEngine.retry). */
  retryDead(record: DeliveryRecord): void {
    this.recentDead.delete(record.messageId);
    this.retries.push(record);
    this.signal.wake();
  }

  wasDead(messageId: string): boolean {
    return this.recentDead.has(messageId);
  }

  progress(now = Date.now()): ListenerProgress {
    const p: ListenerProgress = {
      queue: this.queue,
      inFlight: this.stats.inFlight,
      delivered: this.stats.delivered,
      failedAttempts: this.stats.failedAttempts,
      dead: this.stats.dead,
      pending: this.pending,
      lagMs: this.lagMs(now),
      ...this.health(),
    };
    if (this.cursorId) p.cursor = this.cursorId;
    if (this.stats.lastDeliveryAt) p.lastDeliveryAt = this.stats.lastDeliveryAt;
    return p;
  }

  /** How the receiver has been doing: a success clears the failure streak and its error. */
  health(): ListenerHealth {
    const h: ListenerHealth = { consecutiveFailures: this.failuresInRow };
    if (this.lastOk !== undefined) h.lastOutcome = this.lastOk ? 'ok' : 'failed';
    if (this.failuresInRow > 0 && this.stats.lastError) h.lastError = this.stats.lastError;
    let next: number | undefined;
    for (const at of this.retryAt.values()) if (next === undefined || at < next) next = at;
    if (next !== undefined) h.nextAttemptAt = new Date(next).toISOString();
    return h;
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
      // Every append since the last read was offered and taken: nothing to read.
      if (this.caughtUp) return undefined;
      let page: Envelope[] = [];
      let damaged: string[] = [];
      const missedBefore = this.missedOffers;
      const removed = new Set<string>();
      this.removedWhileReading = removed;
      this.reading = (async () => {
        ({ messages: page, damaged } = await this.store.readMessages(this.queue, { afterId: this.readPos, limit: PAGE }));
      })();
      try {
        await this.reading;
      } finally {
        this.reading = undefined;
        this.removedWhileReading = undefined;
      }
      if (this.buffer.length > 0) break;
      const fresh = this.readPos === undefined ? page : page.filter((m) => m.id > this.readPos!);
      // The position still moves past a removed message, but it is not sent.
      for (const m of fresh) if (!removed.has(m.id)) this.buffer.push(m);
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

  /**
   * Counts the backlog once, at start, without a cap. The count runs on a
   * snapshot while appends, settles and removals go on:
   * - an append is counted unless its batch is in the snapshot (its last id
   *   is at or below the last key the count saw; batches are stored in id order);
   * - a settle moves the cursor past a message above the starting cursor,
   *   which the count or an append counted: it is subtracted;
   * - removals cannot race the snapshot: the store counts under the queue's
   *   deletion lock, so any removal reported meanwhile happened before it and
   *   is not in the count; it is taken off the append batch that held it, in
   *   case that batch is counted as an append (see uncountRemoved).
   */
  private async countBacklog(): Promise<void> {
    this.counting = { appended: [], settled: 0 };
    try {
      const { count, lastId } = await this.store.countMessages(this.queue, { afterId: this.cursorId });
      const seen = lastId ?? '';
      let backlog = count - this.counting.settled;
      for (const batch of this.counting.appended) if (batch.lastId > seen) backlog += batch.n;
      this.backlog = Math.max(0, backlog);
    } catch (err) {
      if (!this.stopped) this.log.error('counting the backlog failed', { listener: this.listenerId, queue: this.queue, error: err as Error });
    } finally {
      this.counting = undefined;
    }
  }

  /**
   * Looks up what the lag needs when memory does not hold it: the first
   * message after the read position, read once per position.
   */
  async refreshPending(): Promise<void> {
    if (this.window.length > 0 || this.buffer.length > 0 || !this.backlog) return;
    if (this.head && this.head.after === this.readPos) return;
    const after = this.readPos;
    try {
      const [message] = await this.store.listMessages(this.queue, { afterId: after, limit: 1 });
      if (this.readPos === after) this.head = { after, message };
    } catch {
      // Statistics only: the lag shows 0 until the next look.
    }
  }

  /** Stored messages after the cursor: the backlog, or what memory holds until it is counted. */
  get pending(): number {
    return this.backlog ?? this.window.length + this.buffer.length;
  }

  /** Age of the oldest message not yet settled in order; 0 when there is none. */
  lagMs(now = Date.now()): number {
    if (this.pending === 0) return 0;
    const oldest =
      this.window[0]?.message ?? this.buffer[0] ?? (this.head && this.head.after === this.readPos ? this.head.message : undefined);
    if (!oldest) return 0;
    return Math.max(0, now - Date.parse(oldest.publishedAt));
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
      if (due > Date.now()) await this.backoff(message.id, due - Date.now());
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
        this.lastOk = result.ok;
        this.failuresInRow = result.ok ? 0 : this.failuresInRow + 1;
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
        await this.backoff(message.id, delay);
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
      let passed = 0;
      while (this.window.length > 0 && this.window[0]!.done) {
        const done = this.window.shift()!;
        cursor = done.message.id;
        if (!done.removed) passed++;
      }
      if (cursor !== undefined) this.cursorId = cursor;
      if (this.counting) this.counting.settled += passed;
      else if (this.backlog !== undefined) this.backlog = Math.max(0, this.backlog - passed);
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

  /** Waits out a retry delay, shown as the next attempt's time meanwhile. */
  private async backoff(messageId: string, ms: number): Promise<void> {
    this.retryAt.set(messageId, Date.now() + ms);
    try {
      await this.sleep(ms);
    } finally {
      this.retryAt.delete(messageId);
    }
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

/**
 * Takes removed ids off the append batches that hold them. Both lists are
 * in id order (batches are stored, and removals reported, oldest first), so
 * one pass over each does it.
 */
function uncountRemoved(batches: { firstId: string; lastId: string; n: number }[], ids: string[]): void {
  let b = 0;
  for (const id of ids) {
    while (b < batches.length && batches[b]!.lastId < id) b++;
    if (b === batches.length) return;
    if (id >= batches[b]!.firstId) batches[b]!.n--;
  }
}

function insertSorted<T>(list: T[], item: T, key: (item: T) => string): void {
  const k = key(item);
  let i = list.length;
  while (i > 0 && key(list[i - 1]!) > k) i--;
  list.splice(i, 0, item);
}
