/**
 * A LevelDB consumer: one listener × one queue. Reads the queue from the
 * listener's position and hands out each message in order (with up to
 * `maxInFlight` out at once), takes each outcome, and keeps the position and
 * delivery records in the store. Consumers share nothing but the database,
 * so a slow or failing listener never delays another.
 *
 * The position on disk only moves past messages that are settled (delivered
 * or dead) and everything before them, so after a crash a consumer resumes
 * at the first message that was not settled: duplicates only for what was
 * out. A message's id is its position: only this module compares them.
 */
import { literalNames, nameMatcher } from '../../protocol/choose.js';
import { timeOfId } from '../../protocol/ids.js';
import { Signal } from '../signal.js';
import type {
  Attempt,
  Consumer,
  ConsumerProgress,
  Delivery,
  DeliveryRecord,
  Envelope,
  ListOptions,
  ListenerRecord,
  MessagePage,
  Position,
  StoreLog,
} from '../types.js';
import type { Appended } from './appended.js';
import { freshRound } from '../fresh-round.js';
import type { DeliveryStore } from './deliveries.js';

const PAGE = 64;
const RECENT_DEAD = 10_000;
/**
 * Fresh appends kept in memory while the consumer is caught up. Beyond this
 * many buffered envelopes it stops taking them and reads them from disk
 * later, so a stalled receiver cannot make the daemon hold a whole burst.
 */
export const MAX_BUFFER = 1000;

/** What a consumer reads of its queue (the LevelStore; a fake in unit tests). */
export interface ConsumerSource {
  readMessages(queue: string, options: ListOptions): Promise<MessagePage>;
  listMessages(queue: string, options: ListOptions): Promise<Envelope[]>;
  countMessages(queue: string, options: { afterId?: Position }): Promise<{ count: number; lastId: Position | undefined }>;
  getMessage(queue: string, id: string): Promise<Envelope>;
}

/** A delivery as this consumer keeps it. */
interface Slot extends Delivery {
  record: DeliveryRecord;
  /** Handed out in order (settling it may move the position); false for a requeued dead one. */
  inOrder: boolean;
  done: boolean;
  /** Deleted from the queue after it was read: already taken off the backlog count. */
  removed?: boolean;
  /** A run of this many messages the filters skipped, ending here (settled from the start). */
  skipped?: number;
  /** While it waits out a retry delay: when it is due (ms) and the timer that wakes the consumer then. */
  dueAt?: number;
  timer?: NodeJS.Timeout;
}

export class LevelConsumer implements Consumer {
  private readonly listenerId: string;
  /** The last position read from the queue (messages up to it are handed out or buffered). */
  private readPos: Position | undefined;
  /** The last position settled in order. */
  private position: Position | undefined;
  private buffer: Envelope[] = [];
  /** Positions in the buffer whose stored record is damaged (the buffer holds a stand-in). */
  private readonly damaged = new Set<string>();
  /** Messages handed out in order whose outcome is not settled yet, oldest first. */
  private window: Slot[] = [];
  /** In-order deliveries released (paused, disconnected): handed out again first, in order. */
  private released: Slot[] = [];
  /** Dead deliveries requeued: handed out before the order, outside it. */
  private requeued: DeliveryRecord[] = [];
  /** Deliveries waiting out a retry delay (they count as out). */
  private readonly waiting = new Set<Slot>();
  /** Deliveries out: handed out and not settled or released, or reserved while one is fetched. */
  private out = 0;
  /** Open records resumed from the store, for messages after the position: handed out with their attempts. */
  private readonly open = new Map<string, DeliveryRecord>();
  private readonly signal = new Signal();
  private readonly ready: Promise<void>;
  private reading: Promise<void> | undefined;
  private caughtUp = false;
  /** Appends not taken directly (see offer): a read that began before one cannot say we are caught up. */
  private missedOffers = 0;
  private closed = false;
  /** Writes handed to the group committer and not yet on disk. */
  private readonly persisting = new Set<Promise<void>>();
  private readonly recentDead = new Set<string>();
  /**
   * Stored messages after the position (the backlog), kept up to date from
   * appends, settles and removals; undefined until the first count is done.
   */
  private backlog: number | undefined;
  /** While the first count runs: what changed meanwhile (see countBacklog). */
  private counting: { appended: { firstId: string; lastId: string; n: number }[]; settled: number } | undefined;
  /** Ids removed from the queue while a page read was in flight: the page may still hold them. */
  private removedWhileReading: Set<string> | undefined;
  /** The first message after the read position, looked up for the lag (valid while readPos is `after`). */
  private head: { after: string | undefined; message: Envelope | undefined } | undefined;
  /** The listener's filters; undefined: every message matches. */
  private readonly matches: ((name: string | undefined) => boolean) | undefined;
  /** The names the filters take when none has a wildcard (looked up in an append's index). */
  private readonly names: readonly string[] | undefined;
  /** Buffered messages that stand for a run of skipped ones ending with them: id → run length. */
  private readonly runs = new Map<string, number>();

  constructor(
    listener: ListenerRecord,
    private readonly queue: string,
    private readonly maxInFlight: number,
    private readonly source: ConsumerSource,
    /** Where outcomes are kept; undefined for a consumer that is not durable. */
    private readonly deliveries: DeliveryStore | undefined,
    private readonly log: StoreLog | undefined,
    start: Position | undefined,
    private readonly onClose: () => void = () => undefined,
    filters?: string[],
    /** The position moved past filtered messages (nothing settled: a `publish --wait` looks again). */
    private readonly onPassed: () => void = () => undefined,
  ) {
    this.listenerId = listener.id;
    this.matches = nameMatcher(filters);
    this.names = literalNames(filters);
    this.position = start;
    this.readPos = start;
    this.ready = this.resume();
    void this.countBacklog();
  }

  /** Open records left by the previous daemon: resumed with their attempts. */
  private async resume(): Promise<void> {
    if (!this.deliveries) return;
    try {
      for (const record of await this.deliveries.openDeliveries(this.listenerId)) {
        if (record.queue !== this.queue) continue;
        // Behind the position means out of order: a dead delivery being retried when the daemon stopped.
        if (this.position !== undefined && record.messageId <= this.position) this.requeued.push(record);
        else this.open.set(record.messageId, record);
      }
    } catch (err) {
      this.log?.error('reading open deliveries failed', { listener: this.listenerId, queue: this.queue, error: err as Error });
    }
  }

  async next(signal: AbortSignal): Promise<Delivery | undefined> {
    await this.ready;
    for (;;) {
      if (signal.aborted || this.closed) return undefined;
      const version = this.signal.version;
      const due = this.takeDue();
      if (due) return due;
      if (this.out < this.maxInFlight) {
        // Reserved before anything is awaited, so concurrent callers never hand out more than maxInFlight.
        this.out++;
        let slot: Slot | undefined;
        try {
          slot = await this.take();
        } catch (err) {
          this.out--;
          if (this.closed) return undefined;
          this.log?.error('reading the queue failed', { listener: this.listenerId, queue: this.queue, error: err as Error });
          await this.signal.wait(version, 1000);
          continue;
        }
        if (slot && slot.dueAt === undefined) return slot;
        // A retry not due yet keeps its place (it stays out, waiting); nothing found gives it back.
        if (!slot) this.out--;
        if (slot || this.signal.version !== version) continue;
      }
      await this.waitUnlessAborted(version, signal);
    }
  }

  /**
   * Waits for a wake-up or the caller's abort. The abort listener is added
   * only here, where an abort must end a wait: adding and removing it on
   * every call showed in the one-listener delivery profile.
   */
  private async waitUnlessAborted(version: number, signal: AbortSignal): Promise<void> {
    // Aborted while it read (no listener then): the loop sees it now.
    if (this.signal.version !== version || signal.aborted) return;
    const onAbort = () => this.signal.wake();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.signal.wait(version);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** A retry whose delay has passed, the earliest first. */
  private takeDue(): Slot | undefined {
    const now = Date.now();
    let due: Slot | undefined;
    for (const slot of this.waiting) if (slot.dueAt! <= now && (due === undefined || slot.dueAt! < due.dueAt!)) due = slot;
    if (!due) return undefined;
    this.waiting.delete(due);
    clearTimeout(due.timer);
    delete due.dueAt;
    delete due.timer;
    return due;
  }

  /** The next delivery for a reserved place: requeued, released, then in order. */
  private async take(): Promise<Slot | undefined> {
    for (let record = this.requeued.shift(); record; record = this.requeued.shift()) {
      const message = await this.source.getMessage(this.queue, record.messageId).catch(() => undefined);
      if (message) return this.holdIfNotDue({ position: record.messageId, message, record, inOrder: false, done: false });
      // Deleted (or expired) since it died: drop the record, or it would stay pending for ever.
      this.log?.warn('retry skipped: message no longer stored', { listener: this.listenerId, message: record.messageId });
      this.persist(() => this.deliveries?.forget(this.listenerId, record!.messageId));
    }
    const released = this.released.shift();
    if (released) return this.holdIfNotDue(released);
    // A run of messages the filters do not take is passed in one step: the buffer is
    // walked synchronously and the position moves once (a listener filtering one name
    // of a hundred skips 99 of every 100 appends, so per-message work shows).
    let run = 0;
    let last: Envelope | undefined;
    let message: Envelope | undefined;
    for (;;) {
      if (this.buffer.length === 0) {
        // The run is passed before anything is awaited: with several out, another take may
        // go on meanwhile and settle a later message; passing the run after that would move
        // the position back.
        if (last) this.pass(last, run);
        run = 0;
        last = undefined;
        if (!(await this.fill())) return undefined;
        continue;
      }
      // Taken from the buffer only here, where it joins the window without an await between.
      message = this.buffer.shift()!;
      // A damaged stand-in has no name to filter on: it goes out, to be recorded dead.
      if (!this.matches || this.damaged.has(message.id) || this.matches(message.name)) break;
      // Filters changed since a delivery of it began: it is not sent any more.
      if (this.open.size > 0 && this.open.delete(message.id)) {
        const id = message.id;
        this.persist(() => this.deliveries?.forget(this.listenerId, id));
      }
      run += this.runs.get(message.id) ?? 1;
      this.runs.delete(message.id);
      last = message;
    }
    if (last) this.pass(last, run);
    const resumed = this.open.get(message.id);
    this.open.delete(message.id);
    const record: DeliveryRecord = resumed
      ? { ...resumed, attempts: [...resumed.attempts] }
      : { listenerId: this.listenerId, queue: this.queue, messageId: message.id, state: 'pending', attempts: [], updatedAt: new Date().toISOString() };
    const damaged = this.damaged.delete(message.id);
    const slot: Slot = { position: message.id, message: damaged ? undefined : message, record, inOrder: true, done: false };
    this.window.push(slot);
    return this.holdIfNotDue(slot);
  }

  /**
   * What of `messages` (in order, read from disk) goes into the buffer:
   * with filters, each run of messages they do not take is kept as its last
   * message (the run's length in `runs`), so a listener taking one name of a
   * hundred buffers about what it sends; the buffer, capped, then seldom
   * overflows, and overflowing would mean reading every skipped message back
   * from disk. A damaged stand-in has no name to filter on: it is taken.
   */
  private chosen(messages: Envelope[]): Envelope[] {
    if (!this.matches) return messages;
    const picks: number[] = [];
    for (let i = 0; i < messages.length; i++) if (this.damaged.has(messages[i]!.id) || this.matches(messages[i]!.name)) picks.push(i);
    return this.withRuns(messages, picks, 0);
  }

  /** `messages` from `from` on as the buffer keeps them: those at `picks` (ascending), and each run between as its last one. */
  private withRuns(messages: Envelope[], picks: readonly number[], from: number): Envelope[] {
    const out: Envelope[] = [];
    let next = from;
    for (const i of picks) {
      if (i > next) this.endRun(out, messages[i - 1]!, i - next);
      out.push(messages[i]!);
      next = i + 1;
    }
    if (next < messages.length) this.endRun(out, messages[messages.length - 1]!, messages.length - next);
    return out;
  }

  private endRun(out: Envelope[], last: Envelope, run: number): void {
    if (run > 1) this.runs.set(last.id, run);
    out.push(last);
  }

  /**
   * The last message of a buffered run of skipped ones was removed: it stays,
   * standing for the rest of the run (one shorter), so skipping it still
   * passes them. False for any other message (it leaves the buffer).
   */
  private shortenRun(id: string): boolean {
    const run = this.runs.get(id);
    if (run === undefined) return false;
    if (run > 2) this.runs.set(id, run - 1);
    else this.runs.delete(id);
    return true;
  }

  /** Passes a run of skipped messages and says so (a `publish --wait` looks again). */
  private pass(last: Envelope, n: number): void {
    this.skip(last, n);
    this.onPassed();
  }

  /**
   * A run of `n` messages the filters do not take, ending at `last`: the
   * position moves past them with no attempt and no record. Behind
   * deliveries still out, the run waits in the window as one settled slot,
   * so the position never passes an unsettled one.
   */
  private skip(last: Envelope, n: number): void {
    if (this.window.length > 0) {
      const record: DeliveryRecord = { listenerId: this.listenerId, queue: this.queue, messageId: last.id, state: 'delivered', attempts: [], updatedAt: '' };
      this.window.push({ position: last.id, message: last, record, inOrder: true, done: true, skipped: n });
      return;
    }
    this.position = last.id;
    if (this.counting) this.counting.settled += n;
    else if (this.backlog !== undefined) this.backlog = Math.max(0, this.backlog - n);
    this.deliveries?.advance(this.listenerId, this.queue, last.id);
  }

  /**
   * Resumed after a restart (or a pause) in the middle of its backoff: the
   * receiver's Retry-After and the backoff still hold; sending at once would
   * hammer it on every restart. It waits, keeping its place.
   */
  private holdIfNotDue(slot: Slot): Slot {
    const due = slot.record.nextAttemptAt === undefined ? Number.NaN : Date.parse(slot.record.nextAttemptAt);
    if (due > Date.now()) this.hold(slot, due);
    return slot;
  }

  private hold(slot: Slot, dueAt: number): void {
    slot.dueAt = dueAt;
    // No timer once closed: a retry recorded during shutdown must not keep the process up for its delay.
    if (!this.closed) {
      slot.timer = setTimeout(() => {
        // Due now, whatever Date.now() says: libuv's timer clock is not Date's, and a timer can
        // fire a millisecond before `dueAt` by Date.now(); the retry would then wait for ever.
        slot.dueAt = Math.min(slot.dueAt!, Date.now());
        this.signal.wake();
      }, Math.max(0, dueAt - Date.now()));
    }
    this.waiting.add(slot);
  }

  delivered(delivery: Delivery, attempt: Attempt): void {
    const slot = delivery as Slot;
    const record = this.record(slot, attempt, 'delivered');
    delete record.nextAttemptAt;
    this.settle(slot, record);
  }

  retry(delivery: Delivery, attempt: Attempt, delayMs: number): void {
    const slot = delivery as Slot;
    const record = this.record(slot, attempt, 'failed');
    const dueAt = Date.now() + delayMs;
    if (delayMs > 0) record.nextAttemptAt = new Date(dueAt).toISOString();
    else delete record.nextAttemptAt;
    // Saved so that a restart keeps counting attempts from here.
    this.persist(() => this.deliveries?.saveOpen(record));
    this.hold(slot, dueAt);
  }

  dead(delivery: Delivery, attempt: Attempt): void {
    const slot = delivery as Slot;
    const record = this.record(slot, attempt, 'dead');
    delete record.nextAttemptAt;
    this.recentDead.add(slot.position);
    if (this.recentDead.size > RECENT_DEAD) this.recentDead.delete(this.recentDead.values().next().value!);
    this.settle(slot, record);
  }

  /**
   * Puts an interrupted delivery back, to be handed out first again. Kept
   * sorted by position: with several out, each is released in whatever order
   * their attempts return, and the listener must still get them in publish order.
   */
  release(delivery: Delivery): void {
    const slot = delivery as Slot;
    this.out--;
    if (slot.inOrder) insertSorted(this.released, slot, (s) => s.position);
    else insertSorted(this.requeued, slot.record, (r) => r.messageId);
    this.signal.wake();
  }

  async requeue(messageId: string): Promise<boolean> {
    if (!this.deliveries) return false;
    // After the resume, or it could find this record too and hand it out twice.
    await this.ready;
    const record = await this.deliveries.get(this.listenerId, messageId);
    if (!record || record.state !== 'dead' || record.queue !== this.queue) return false;
    // Saved as pending before the reply: a second `retry --all-dead` does not send it twice, and a restart resumes it.
    const fresh = freshRound(record);
    await this.deliveries.saveOpen(fresh);
    this.recentDead.delete(messageId);
    insertSorted(this.requeued, fresh, (r) => r.messageId);
    this.signal.wake();
    return true;
  }

  settledThrough(position: Position): boolean {
    return this.position !== undefined && this.position >= position;
  }

  wasDead(messageId: string): boolean {
    return this.recentDead.has(messageId);
  }

  progress(now = Date.now()): ConsumerProgress {
    const p: ConsumerProgress = { inFlight: this.out, pending: this.pending, lagMs: this.lagMs(now) };
    // LevelDB's positions are message ids.
    if (this.position !== undefined) p.cursor = this.position;
    for (const slot of this.waiting) if (p.nextRetryAt === undefined || slot.dueAt! < p.nextRetryAt) p.nextRetryAt = slot.dueAt!;
    return p;
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const slot of this.waiting) clearTimeout(slot.timer);
      this.signal.wake();
      this.onClose();
    }
    await Promise.allSettled([...this.persisting]);
  }

  /**
   * New messages appended to the queue: while caught up, take them into the
   * buffer (up to MAX_BUFFER) so that live delivery never reads the disk.
   * Caught up means every message after the read position is still to be
   * offered here, so taking the offers in order skips and repeats nothing.
   */
  offer(batch: Appended): void {
    const messages = batch.messages;
    const last = messages[messages.length - 1];
    if (last === undefined) return;
    // New ids are above every position: all of them join the backlog.
    if (this.counting) this.counting.appended.push({ firstId: messages[0]!.id, lastId: last.id, n: messages.length });
    else if (this.backlog !== undefined) this.backlog += messages.length;
    if (this.caughtUp && !this.reading) {
      // Ids rise through a batch: what a read already took of it is a prefix.
      let from = 0;
      if (this.readPos !== undefined) while (from < messages.length && messages[from]!.id <= this.readPos) from++;
      const fresh = this.matches
        ? this.withRuns(messages, batch.taken(this.matches, this.names, from), from)
        : from === 0
          ? messages
          : messages.slice(from);
      const taken = Math.min(fresh.length, MAX_BUFFER - this.buffer.length);
      for (let i = 0; i < taken; i++) this.buffer.push(fresh[i]!);
      if (taken > 0) this.readPos = fresh[taken - 1]!.id;
      if (taken < fresh.length) {
        // The rest stays on disk after the read position: the next read takes it (and counts its runs afresh).
        this.caughtUp = false;
        for (let i = taken; i < fresh.length; i++) this.runs.delete(fresh[i]!.id);
      }
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
    const position = this.position;
    // Retention usually removes only what every listener is past: nothing to do then.
    if (ids.length === 0 || (position !== undefined && ids[ids.length - 1]! <= position)) return;
    const after = position === undefined ? ids : ids.filter((id) => id > position);
    if (after.length === 0) return;
    if (this.counting) uncountRemoved(this.counting.appended, after);
    else if (this.backlog !== undefined) this.backlog = Math.max(0, this.backlog - after.length);
    const gone = new Set(after);
    for (const slot of this.window) if (gone.has(slot.position)) slot.removed = true;
    if (this.buffer.length > 0) this.buffer = this.buffer.filter((m) => !gone.has(m.id) || this.shortenRun(m.id));
    if (this.reading) for (const id of after) if (this.readPos === undefined || id > this.readPos) this.removedWhileReading?.add(id);
    this.head = undefined;
  }

  /**
   * Reads the next page after the read position into the buffer unless it
   * holds something; false when there is nothing to read. The caller takes
   * from the buffer itself, with no await before its message joins the window.
   */
  private async fill(): Promise<boolean> {
    while (this.buffer.length === 0) {
      if (this.reading) {
        await this.reading;
        continue;
      }
      // Every append since the last read was offered and taken: nothing to read.
      if (this.caughtUp) return false;
      let page: Envelope[] = [];
      let damaged: string[] = [];
      const missedBefore = this.missedOffers;
      const removed = new Set<string>();
      this.removedWhileReading = removed;
      this.reading = (async () => {
        ({ messages: page, damaged } = await this.source.readMessages(this.queue, { afterId: this.readPos, limit: PAGE }));
      })();
      try {
        await this.reading;
      } finally {
        this.reading = undefined;
        this.removedWhileReading = undefined;
      }
      if (this.buffer.length > 0) break;
      const fresh = this.readPos === undefined ? page : page.filter((m) => m.id > this.readPos!);
      // A stored message that failed its checksum cannot be sent as published: it is handed out
      // in its place, without the message, to be recorded dead at once with the reason.
      const standIns = damaged
        .filter((id) => (this.readPos === undefined || id > this.readPos) && !this.recentDead.has(id))
        .map((id): Envelope => ({ id, queue: this.queue, data: '', publishedAt: storedAt(id) }));
      for (const m of standIns) this.damaged.add(m.id);
      const inOrder = standIns.length === 0 ? fresh : [...fresh, ...standIns].sort((a, b) => (a.id < b.id ? -1 : 1));
      // The position still moves past a removed message, but it is not sent.
      for (const m of this.chosen(removed.size === 0 ? inOrder : inOrder.filter((m) => !removed.has(m.id)))) this.buffer.push(m);
      if (fresh.length > 0) this.readPos = fresh[fresh.length - 1]!.id;
      const lastDamaged = damaged[damaged.length - 1];
      if (lastDamaged !== undefined && (this.readPos === undefined || lastDamaged > this.readPos)) this.readPos = lastDamaged;
      // Messages appended while the read was in flight may be missing from its page: only a
      // read that no append raced may hand over to the fresh-append path, or those are skipped.
      this.caughtUp = page.length < PAGE && this.missedOffers === missedBefore;
      if (inOrder.length === 0) return false;
    }
    return true;
  }

  /**
   * Counts the backlog once, at start, without a cap. The count runs on a
   * snapshot while appends, settles and removals go on:
   * - an append is counted unless its batch is in the snapshot (its last id
   *   is at or below the last key the count saw; batches are stored in id order);
   * - a settle moves the position past a message above the starting position,
   *   which the count or an append counted: it is subtracted;
   * - removals cannot race the snapshot: the store counts under the queue's
   *   deletion lock, so any removal reported meanwhile happened before it and
   *   is not in the count; it is taken off the append batch that held it, in
   *   case that batch is counted as an append (see uncountRemoved).
   */
  private async countBacklog(): Promise<void> {
    this.counting = { appended: [], settled: 0 };
    try {
      const { count, lastId } = await this.source.countMessages(this.queue, { afterId: this.position });
      const seen = lastId ?? '';
      let backlog = count - this.counting.settled;
      for (const batch of this.counting.appended) if (batch.lastId > seen) backlog += batch.n;
      this.backlog = Math.max(0, backlog);
    } catch (err) {
      if (!this.closed) this.log?.error('counting the backlog failed', { listener: this.listenerId, queue: this.queue, error: err as Error });
    } finally {
      this.counting = undefined;
    }
  }

  /**
   * Looks up what the lag needs when memory does not hold it: the first
   * message after the read position, read once per position.
   */
  async refresh(): Promise<void> {
    if (this.window.length > 0 || this.buffer.length > 0 || !this.backlog) return;
    if (this.head && this.head.after === this.readPos) return;
    const after = this.readPos;
    try {
      const [message] = await this.source.listMessages(this.queue, { afterId: after, limit: 1 });
      if (this.readPos === after) this.head = { after, message };
    } catch {
      // Statistics only: the lag shows 0 until the next look.
    }
  }

  /** Stored messages after the position: the backlog, or what memory holds until it is counted. */
  private get pending(): number {
    return this.backlog ?? this.window.length + this.buffer.length;
  }

  /** Age of the oldest message not yet settled in order; 0 when there is none. */
  private lagMs(now: number): number {
    if (this.pending === 0) return 0;
    const oldest =
      this.window[0]?.message ?? this.buffer[0] ?? (this.head && this.head.after === this.readPos ? this.head.message : undefined);
    if (!oldest) return 0;
    return Math.max(0, now - Date.parse(oldest.publishedAt));
  }

  /** The delivery's record with this attempt added, kept on the slot (a retry hands the slot out again). */
  private record(slot: Slot, attempt: Attempt, state: DeliveryRecord['state']): DeliveryRecord {
    slot.record = { ...slot.record, attempts: [...slot.record.attempts, attempt], state, updatedAt: new Date().toISOString() };
    return slot.record;
  }

  private settle(slot: Slot, record: DeliveryRecord): void {
    this.out--;
    let position: Position | undefined;
    if (slot.inOrder) {
      slot.done = true;
      let passed = 0;
      while (this.window.length > 0 && this.window[0]!.done) {
        const done = this.window.shift()!;
        position = done.position;
        if (!done.removed) passed += done.skipped ?? 1;
      }
      if (position !== undefined) this.position = position;
      if (this.counting) this.counting.settled += passed;
      else if (this.backlog !== undefined) this.backlog = Math.max(0, this.backlog - passed);
    }
    this.persist(() => this.deliveries?.settle(record, position));
    this.signal.wake();
  }

  /**
   * Hands a write to the group committer without waiting for it: the next
   * delivery starts while this one's ack is synced, and acks of all
   * consumers share fsyncs. The committer applies writes in call order, so
   * the position on disk never moves backwards.
   */
  private persist(write: () => Promise<void> | undefined): void {
    const pending = write();
    if (!pending) return;
    const tracked = pending.catch((err: unknown) =>
      this.log?.error('saving delivery state failed', { listener: this.listenerId, error: err as Error }),
    );
    this.persisting.add(tracked);
    void tracked.then(() => this.persisting.delete(tracked));
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

/** When a message was stored, from its id; a damaged key may not hold a time (then the epoch: the lag is only a figure). */
function storedAt(id: string): string {
  const at = new Date(timeOfId(id));
  return Number.isNaN(at.getTime()) ? new Date(0).toISOString() : at.toISOString();
}

function insertSorted<T>(list: T[], item: T, key: (item: T) => string): void {
  const k = key(item);
  let i = list.length;
  while (i > 0 && key(list[i - 1]!) > k) i--;
  list.splice(i, 0, item);
}
