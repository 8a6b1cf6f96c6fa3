/**
 * Listener registrations and delivery progress, kept in the same LevelDB as
 * the messages so an acknowledgement is one atomic batch (advance the
 * cursor, record the outcome), as in level-jobs.
 *
 * Keys:
 *   l!<lid>              listener record (its queues by id)
 *   c!<lid>!<qid>        cursor: the last message id settled in order for that queue
 *   d!<lid>!<msgid>      open (pending/failed) or dead delivery, with its attempts and queue id
 *   h!<lid>!<msgid>      recent delivered history (the newest HISTORY_KEEP per listener)
 *
 * A message is stored once; what each listener has done with it is a cursor
 * plus a record for the deliveries that needed more than one try.
 *
 * Records carry a checksum (record.ts); a damaged one is reported and skipped.
 */
import type { ClassicLevel } from 'classic-level';
import type { Deliveries, DeliveryFilter, DeliveryRecord, ListenerRecord, QueueId } from '../types.js';
import type { GroupCommitter, Op } from './commit.js';
import type { StorageGuard } from './guard.js';
import { openRecord, seal } from './record.js';

const HIGH = '~';
export const HISTORY_KEEP = 1000;

export class DeliveryStore implements Deliveries {
  private readonly listenerMap = new Map<string, ListenerRecord>();
  private readonly cursors = new Map<string, string>();
  private readonly historyCount = new Map<string, number>();
  private readonly pruning = new Set<string>();

  constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly committer: GroupCommitter,
    private readonly hasQueue: (queue: QueueId) => boolean,
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
      this.cursors.set(key, value);
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

  byName(name: string): ListenerRecord | undefined {
    for (const record of this.listenerMap.values()) if (record.name === name) return record;
    return undefined;
  }

  async saveListener(record: ListenerRecord, cursors: { queue: QueueId; cursor: string | undefined }[] = []): Promise<void> {
    this.listenerMap.set(record.id, record);
    const ops: Op[] = [{ type: 'put', key: 'l!' + record.id, value: seal('l!' + record.id, JSON.stringify(record)) }];
    for (const { queue, cursor } of cursors) {
      const key = this.cursorKey(record.id, queue);
      if (key === undefined || cursor === undefined) continue;
      this.cursors.set(key, cursor);
      ops.push({ type: 'put', key, value: cursor });
    }
    await this.committer.commit(ops);
  }

  /** Removes a listener with its cursors, open and dead deliveries, and history. */
  async removeListener(id: string): Promise<void> {
    this.listenerMap.delete(id);
    for (const key of [...this.cursors.keys()]) if (key.startsWith(`c!${id}!`)) this.cursors.delete(key);
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
      if (this.cursors.delete(key)) ops.push({ type: 'del', key });
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

  // ---- progress ----------------------------------------------------------

  cursor(lid: string, queue: QueueId): string | undefined {
    const key = this.cursorKey(lid, queue);
    return key === undefined ? undefined : this.cursors.get(key);
  }

  /**
   * Records the outcome of a delivery and, if given, advances the cursor, in
   * one synced batch. Delivered records go to the bounded history; dead ones
   * stay until retried or the listener is removed.
   */
  settle(record: DeliveryRecord, cursor: string | undefined): Promise<void> {
    const ops: Op[] = [];
    if (cursor !== undefined) this.moveCursor(record.listenerId, record.queue, cursor);
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
    return this.committer.commit(ops);
  }

  /** Advances only the cursor (messages skipped, e.g. filtered or removed). */
  advance(lid: string, queue: QueueId, cursor: string): Promise<void> {
    this.moveCursor(lid, queue, cursor);
    return this.committer.commit([]);
  }

  /**
   * The cursor is written once per group-committed batch, with its newest
   * value (a listener settling 500 messages during one fsync writes it once),
   * in the same batch as the records of the messages it moved past.
   */
  private moveCursor(lid: string, queue: QueueId, cursor: string): void {
    const key = this.cursorKey(lid, queue);
    if (key === undefined) return;
    this.cursors.set(key, cursor);
    this.committer.markDirty(key, () => {
      const latest = this.cursors.get(key);
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
            if (!this.hasQueue(record.queue)) continue;
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
        if (!this.hasQueue(record.queue)) orphans.push({ type: 'del', key });
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

  /** None for a deleted queue: a worker settling after the delete must not write its cursor back. */
  private cursorKey(lid: string, queue: QueueId): string | undefined {
    return this.hasQueue(queue) ? `c!${lid}!${queue}` : undefined;
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
