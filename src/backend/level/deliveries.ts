/**
 * Listener registrations and delivery progress, kept in the same LevelDB as
 * the messages so an acknowledgement is one atomic batch (advance the
 * position, record the outcome), as in level-jobs. The consumers
 * (consumer.ts) write positions and records through this class.
 *
 * Keys:
 *   l!<lid>              listener record (its queues by id)
 *   c!<lid>!<qid>        position: the last message id settled in order for that queue
 *   d!<lid>!<msgid>      open (pending/failed) or dead delivery, with its attempts and queue id
 *   h!<lid>!<msgid>      recent delivered history (the newest HISTORY_KEEP per listener)
 *
 * A message is stored once; what each listener has done with it is a position
 * plus a record for the deliveries that needed more than one try.
 *
 * Records carry a checksum (record.ts); a damaged one is reported and skipped.
 */
import { freshRound } from '../fresh-round.js';
import type { ClassicLevel } from 'classic-level';
import type { Deliveries, DeliveryFilter, DeliveryRecord, ListenerRecord, Position, QueueId, StartAt } from '../types.js';
import type { GroupCommitter, Op } from './commit.js';
import type { StorageGuard } from './guard.js';
import { openRecord, seal } from './record.js';
import { HISTORY_KEEP } from '../../protocol/defaults.js';

const HIGH = '~';

/** What the delivery records need of the queue catalogue (the LevelStore). */
export interface Catalogue {
  hasQueue(queue: QueueId): boolean;
  /** Every queue's id. */
  queueIds(): QueueId[];
  /** Where `start` is in the queue now. */
  positionAt(queue: QueueId, start: StartAt): Position | undefined;
  /** The position just before a stored message; MESSAGE_NOT_FOUND when it is not stored. */
  positionBefore(queue: QueueId, messageId: string): Promise<Position>;
  countMessages(queue: QueueId, options: { afterId?: Position }): Promise<{ count: number }>;
}

export class DeliveryStore implements Deliveries {
  private readonly listenerMap = new Map<string, ListenerRecord>();
  /** Position key (c!) → the last message id settled in order. */
  private readonly positions = new Map<string, string>();
  private readonly historyCount = new Map<string, number>();
  private readonly pruning = new Set<string>();

  constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly committer: GroupCommitter,
    private readonly catalogue: Catalogue,
    private readonly guard: StorageGuard,
    private readonly onDamaged: (key: string) => void,
  ) {}

  async load(): Promise<void> {
    for await (const [key, value] of this.db.iterator({ gt: 'l!', lt: 'l!' + HIGH })) {
      const record = openRecord<ListenerRecord>(key, value);
      if (record === undefined || typeof record.id !== 'string') this.onDamaged(key);
      else this.listenerMap.set(record.id, record);
    }
    for await (const [key, value] of this.db.iterator({ gt: 'c!', lt: 'c!' + HIGH })) {
      this.positions.set(key, value);
    }
    for await (const key of this.db.keys({ gt: 'h!', lt: 'h!' + HIGH })) {
      const lid = key.slice(2, key.indexOf('!', 2));
      this.historyCount.set(lid, (this.historyCount.get(lid) ?? 0) + 1);
    }
  }

  // ---- listeners ---------------------------------------------------------

  listeners(): ListenerRecord[] {
    return [...this.listenerMap.values()];
  }

  listener(id: string): ListenerRecord | undefined {
    return this.listenerMap.get(id);
  }

  /** One daemon owns a LevelDB store: no other writer to report. */
  onListenerEvent(): void {}

  byName(name: string): ListenerRecord | undefined {
    for (const record of this.listenerMap.values()) if (record.name === name) return record;
    return undefined;
  }

  async saveListener(record: ListenerRecord, start: StartAt = 'all'): Promise<void> {
    this.listenerMap.set(record.id, record);
    const ops: Op[] = [{ type: 'put', key: 'l!' + record.id, value: seal('l!' + record.id, JSON.stringify(record)) }];
    const queues = record.allQueues ? this.catalogue.queueIds() : record.queues;
    for (const queue of queues) {
      const key = this.positionKey(record.id, queue);
      if (key === undefined || this.positions.has(key)) continue;
      const position = this.catalogue.positionAt(queue, start);
      if (position === undefined) continue;
      this.positions.set(key, position);
      ops.push({ type: 'put', key, value: position });
    }
    await this.committer.commit(ops);
  }

  /** Removes a listener with its positions, open and dead deliveries, and history. */
  async removeListener(id: string): Promise<void> {
    this.listenerMap.delete(id);
    for (const key of [...this.positions.keys()]) if (key.startsWith(`c!${id}!`)) this.positions.delete(key);
    this.historyCount.delete(id);
    await this.committer.commit([{ type: 'del', key: 'l!' + id }]);
    for (const prefix of [`c!${id}!`, `d!${id}!`, `h!${id}!`]) {
      await this.guard.use(() => this.db.clear({ gt: prefix, lt: prefix + HIGH }));
    }
  }

  /**
   * Ops that drop a deleted queue from every listener, to go in the same
   * batch as the queue's removal. Returns the listeners left without queues
   * (removed too).
   */
  forgetQueue(qid: QueueId): { ops: Op[]; removed: string[] } {
    const ops: Op[] = [];
    const removed: string[] = [];
    for (const record of this.listenerMap.values()) {
      const key = `c!${record.id}!${qid}`;
      if (this.positions.delete(key)) ops.push({ type: 'del', key });
      if (!record.queues.includes(qid)) continue;
      record.queues = record.queues.filter((q) => q !== qid);
      if (record.queues.length === 0 && !record.allQueues) {
        this.listenerMap.delete(record.id);
        removed.push(record.id);
        ops.push({ type: 'del', key: 'l!' + record.id });
      } else {
        ops.push({ type: 'put', key: 'l!' + record.id, value: seal('l!' + record.id, JSON.stringify(record)) });
      }
    }
    return { ops, removed };
  }

  /** Clears what is left of removed listeners after forgetQueue (not urgent). */
  async clearListenerData(ids: string[]): Promise<void> {
    for (const id of ids) {
      for (const prefix of [`c!${id}!`, `d!${id}!`, `h!${id}!`]) {
        await this.guard.use(() => this.db.clear({ gt: prefix, lt: prefix + HIGH }));
      }
    }
  }

  async movePosition(lid: string, queue: QueueId, at: { sinceMs: number } | { messageId: string }): Promise<number> {
    const key = this.positionKey(lid, queue);
    if (key === undefined) return 0;
    // '' is before every message: a listener moved to the first message reads the whole queue.
    const position = 'messageId' in at ? await this.catalogue.positionBefore(queue, at.messageId) : (this.catalogue.positionAt(queue, at) ?? '');
    const ops: Op[] = [{ type: 'put', key, value: position }];
    // Open deliveries after the new position would be resumed with their old attempts and
    // backoff; a replay sends them again from scratch, like the messages around them. A dead
    // one goes out again as a fresh round that keeps its attempts: once delivered it is
    // delivered (its history shows the failures), not still listed, and retried, as dead.
    const prefix = `d!${lid}!`;
    await this.guard.use(async () => {
      for await (const [k, value] of this.db.iterator({ gt: prefix + position, lt: prefix + HIGH })) {
        const record = this.open(k, value);
        if (record?.queue !== queue) continue;
        if (record.state === 'dead') ops.push({ type: 'put', key: k, value: seal(k, JSON.stringify(freshRound(record))) });
        else ops.push({ type: 'del', key: k });
      }
    });
    this.positions.set(key, position);
    await this.committer.commit(ops);
    return (await this.catalogue.countMessages(queue, { afterId: position })).count;
  }

  /**
   * Removes a listener's open, dead and delivered records of a deleted queue
   * (the listener stays, registered for its other queues).
   */
  async forgetQueueRecords(lid: string, queue: QueueId): Promise<void> {
    const ops: Op[] = [];
    let history = 0;
    for (const space of ['d', 'h']) {
      const prefix = `${space}!${lid}!`;
      await this.guard.use(async () => {
        for await (const [key, value] of this.db.iterator({ gt: prefix, lt: prefix + HIGH })) {
          if (this.open(key, value)?.queue !== queue) continue;
          ops.push({ type: 'del', key });
          if (space === 'h') history++;
        }
      });
    }
    if (ops.length === 0) return;
    await this.committer.commit(ops);
    if (history > 0) this.historyCount.set(lid, Math.max(0, (this.historyCount.get(lid) ?? 0) - history));
  }

  // ---- progress (the consumers') -----------------------------------------

  /** The last position settled in order by this listener in this queue. */
  position(lid: string, queue: QueueId): Position | undefined {
    const key = this.positionKey(lid, queue);
    return key === undefined ? undefined : this.positions.get(key);
  }

  /**
   * Records the outcome of a delivery and, if given, advances the position,
   * in one synced batch (shared with others: see commitSoon). Delivered records go to the bounded history; dead
   * ones stay until retried or the listener is removed.
   */
  settle(record: DeliveryRecord, position: Position | undefined): Promise<void> {
    const ops: Op[] = [];
    if (position !== undefined) this.advance(record.listenerId, record.queue, position);
    const open = `d!${record.listenerId}!${record.messageId}`;
    if (record.state === 'delivered') {
      if (record.attempts.length > 1) ops.push({ type: 'del', key: open });
      const done = `h!${record.listenerId}!${record.messageId}`;
      ops.push({ type: 'put', key: done, value: seal(done, JSON.stringify(record)) });
      const count = (this.historyCount.get(record.listenerId) ?? 0) + 1;
      this.historyCount.set(record.listenerId, count);
      if (count > HISTORY_KEEP * 1.2) void this.pruneHistory(record.listenerId);
    } else {
      ops.push({ type: 'put', key: open, value: seal(open, JSON.stringify(record)) });
    }
    // An acknowledgement: nobody waits for it to be synced (the next delivery has started), so it waits a
    // few milliseconds for company rather than taking a batch and an fsync of its own (commit.ts).
    return this.committer.commitSoon(ops);
  }

  /**
   * The position is written once per group-committed batch, with its newest
   * value (a listener settling 500 messages during one fsync writes it once),
   * in the same batch as the records of the messages it moved past. A
   * consumer skipping filtered messages calls it alone: the position goes
   * out with the next batch (after a crash the few skips are made again).
   */
  advance(lid: string, queue: QueueId, position: Position): void {
    const key = this.positionKey(lid, queue);
    if (key === undefined) return;
    this.positions.set(key, position);
    this.committer.markDirty(key, () => {
      const latest = this.positions.get(key);
      return latest === undefined ? { type: 'del', key } : { type: 'put', key, value: latest };
    });
  }

  /** Drops an open or dead delivery record (its message is gone: nothing left to deliver). */
  forget(lid: string, messageId: string): Promise<void> {
    return this.committer.commit([{ type: 'del', key: `d!${lid}!${messageId}` }]);
  }

  /** Persists a delivery still being retried, so a restart keeps its attempt count. */
  saveOpen(record: DeliveryRecord): Promise<void> {
    const key = `d!${record.listenerId}!${record.messageId}`;
    return this.committer.commit([{ type: 'put', key, value: seal(key, JSON.stringify(record)) }]);
  }

  async get(lid: string, messageId: string): Promise<DeliveryRecord | undefined> {
    for (const key of [`d!${lid}!${messageId}`, `h!${lid}!${messageId}`]) {
      const value = await this.guard.use(() => this.db.get(key));
      if (value !== undefined) return this.open(key, value);
    }
    return undefined;
  }

  /** Open and dead records (and with state 'delivered', the history), newest first. */
  async list(filter: DeliveryFilter): Promise<DeliveryRecord[]> {
    const lids = filter.listenerId ? [filter.listenerId] : [...this.listenerMap.keys()];
    const spaces = filter.state === 'delivered' ? ['h'] : filter.state ? ['d'] : ['d'];
    const out: DeliveryRecord[] = [];
    for (const lid of lids) {
      for (const space of spaces) {
        const prefix = `${space}!${lid}!`;
        await this.guard.use(async () => {
          for await (const [key, value] of this.db.iterator({ gt: prefix, lt: prefix + HIGH, reverse: true })) {
            const record = this.open(key, value);
            if (record === undefined) continue;
            if (filter.state && record.state !== filter.state) continue;
            // Records of a deleted queue are being cleared (forgetQueueRecords): not shown meanwhile.
            if (!this.catalogue.hasQueue(record.queue)) continue;
            out.push(record);
            if (out.length >= filter.limit * lids.length) break;
          }
        });
      }
    }
    out.sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0));
    return out.slice(0, filter.limit);
  }

  /** Open (pending/failed) deliveries of a listener, oldest first: resumed at start. */
  async openDeliveries(lid: string): Promise<DeliveryRecord[]> {
    const out: DeliveryRecord[] = [];
    const orphans: Op[] = [];
    const prefix = `d!${lid}!`;
    await this.guard.use(async () => {
      for await (const [key, value] of this.db.iterator({ gt: prefix, lt: prefix + HIGH })) {
        const record = this.open(key, value);
        if (record === undefined) continue;
        // Left by a queue deleted just before a crash (forgetQueueRecords runs after the delete).
        if (!this.catalogue.hasQueue(record.queue)) orphans.push({ type: 'del', key });
        else if (record.state !== 'dead') out.push(record);
      }
    });
    if (orphans.length > 0) await this.committer.commit(orphans);
    return out;
  }

  async deadDeliveries(lid: string): Promise<DeliveryRecord[]> {
    const out: DeliveryRecord[] = [];
    const prefix = `d!${lid}!`;
    await this.guard.use(async () => {
      for await (const [key, value] of this.db.iterator({ gt: prefix, lt: prefix + HIGH })) {
        const record = this.open(key, value);
        if (record?.state === 'dead') out.push(record);
      }
    });
    return out;
  }

  /** A delivery record, or undefined (reported) if it is damaged. */
  private open(key: string, value: string): DeliveryRecord | undefined {
    const record = openRecord<DeliveryRecord>(key, value);
    if (record === undefined || typeof record.queue !== 'string' || !Array.isArray(record.attempts)) {
      this.onDamaged(key);
      return undefined;
    }
    return record;
  }

  /** None for a deleted queue: a consumer settling after the delete must not write its position back. */
  private positionKey(lid: string, queue: QueueId): string | undefined {
    return this.catalogue.hasQueue(queue) ? `c!${lid}!${queue}` : undefined;
  }

  private async pruneHistory(lid: string): Promise<void> {
    if (this.pruning.has(lid)) return;
    this.pruning.add(lid);
    try {
      const count = this.historyCount.get(lid) ?? 0;
      const excess = count - HISTORY_KEEP;
      if (excess <= 0) return;
      const ops: Op[] = [];
      const prefix = `h!${lid}!`;
      await this.guard.use(async () => {
        for await (const key of this.db.keys({ gt: prefix, lt: prefix + HIGH, limit: excess })) {
          ops.push({ type: 'del', key });
        }
      });
      await this.committer.commit(ops);
      this.historyCount.set(lid, (this.historyCount.get(lid) ?? 0) - ops.length);
    } finally {
      this.pruning.delete(lid);
    }
  }
}
