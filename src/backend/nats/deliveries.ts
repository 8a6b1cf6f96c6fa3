/**
 * Listeners and delivery records on NATS: listener records in the
 * catalogue bucket (kept in memory, current through the catalogue watch),
 * open and dead delivery records in the deliveries bucket, delivered ones in
 * the history stream (the newest 1000 per listener, history.ts). Positions are the durable
 * consumers' (consumer.ts); a listener's consumers are made when it is
 * saved, so its start position is fixed then.
 *
 * Not atomic: an outcome writes the record, then acks (supports
 * .atomicSettle is false). A crash in between delivers the message again
 * (at least once), never loses it.
 */
import { freshRound } from '../fresh-round.js';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { DiscueError } from '../../protocol/errors.js';
import type { Deliveries, DeliveryFilter, DeliveryRecord, ListenerEvent, ListenerRecord, StartAt } from '../types.js';
import type { Connection } from './connection.js';
import type { History } from './history.js';
import type { Names } from './names.js';
import { OwnWrites } from './own-writes.js';

const OPEN_STATES = new Set(['pending', 'failed']);

/**
 * A delivery record as stored: with the message's stream sequence (so a
 * requeue finds the message), and whether it was requeued (handed out by
 * the consumer, not the server).
 */
/**
 * A record as the bucket keeps it: with its message's sequence; `requeued`
 * (a dead one retried: handed out by the consumer itself), or `replayed` (a
 * dead one after a replay's start: the server hands its message out again
 * as new, and the consumer takes this record for it).
 */
export type StoredRecord = DeliveryRecord & { seq?: number; requeued?: boolean; replayed?: boolean };

/** What the store does for the registry: a listener's durable consumers. */
export interface ConsumerKeeper {
  /** Makes (or updates) the listener's durable consumer on each of its queues; new ones start at `start`. */
  ensure(record: ListenerRecord, start: StartAt): Promise<void>;
  /** Removes the listener's durable consumers from these queues. */
  drop(lid: string, queues: string[]): Promise<void>;
  /** Makes the listener's consumer of one queue again, starting at `at`; returns the messages after it. */
  /** Makes the consumer again at `at`: the messages after it, and the sequence it starts after. */
  move(record: ListenerRecord, queue: string, at: { sinceMs: number } | { messageId: string }): Promise<{ pending: number; after: number }>;
}

export class NatsDeliveries implements Deliveries {
  private readonly records = new Map<string, ListenerRecord>();
  /** Listener keys this process writes: their echoes from the watch are not news (a pause echoed after the resume must not undo it). */
  private readonly own = new OwnWrites();
  private readonly listenerEvents: ((event: ListenerEvent) => void)[] = [];

  constructor(
    private readonly conn: Connection,
    private readonly names: Names,
    private readonly catalog: KV,
    private readonly open: KV,
    private readonly history: History,
    private readonly consumers: ConsumerKeeper,
    private readonly jsm: JetStreamManager,
  ) {}

  onListenerEvent(listener: (event: ListenerEvent) => void): void {
    this.listenerEvents.push(listener);
  }

  /**
   * A catalogue entry about a listener (from the initial read, or live from
   * the watch: then a change another daemon made is reported). A known
   * record is updated in place: the workers running it hold that object.
   */
  apply(entry: KvEntry, live = false): void {
    const [kind, lid] = entry.key.split('.');
    if (kind !== 'listener' || lid === undefined || this.own.isEcho(entry)) return;
    const known = this.records.get(lid);
    if (entry.operation !== 'PUT') {
      if (known === undefined) return;
      this.records.delete(lid);
      if (live) this.emit({ type: 'removed', id: lid });
      return;
    }
    const value = entry.json<ListenerRecord>();
    if (known === undefined) {
      this.records.set(lid, value);
      if (live) this.emit({ type: 'saved', record: value });
      return;
    }
    if (JSON.stringify(known) === JSON.stringify(value)) return;
    const previousQueues = known.queues;
    for (const key of Object.keys(known)) if (!(key in value)) delete (known as unknown as Record<string, unknown>)[key];
    Object.assign(known, value);
    if (live) this.emit({ type: 'saved', record: known, previousQueues });
  }

  private emit(event: ListenerEvent): void {
    for (const l of this.listenerEvents) l(event);
  }

  /** A write of a listener key whose echo from the watch is not news. */
  private async put(lid: string, record: ListenerRecord | undefined): Promise<void> {
    const key = this.names.listenerKey(lid);
    this.own.hold(key);
    try {
      if (record === undefined) {
        await this.conn.request('remove a listener', () => this.catalog.delete(key));
        this.own.wrote(key, Infinity);
      } else {
        this.own.wrote(key, await this.conn.request('save a listener', () => this.catalog.put(key, JSON.stringify(record))));
      }
    } finally {
      this.own.release(key);
    }
  }

  listeners(): ListenerRecord[] {
    return [...this.records.values()];
  }

  listener(id: string): ListenerRecord | undefined {
    return this.records.get(id);
  }

  byName(name: string): ListenerRecord | undefined {
    for (const record of this.records.values()) if (record.name === name) return record;
    return undefined;
  }

  async saveListener(record: ListenerRecord, start: StartAt = 'all'): Promise<void> {
    // Consumers first: a daemon that sees the listener appear finds them, at their start.
    await this.consumers.ensure(record, start);
    const before = this.records.get(record.id);
    await this.put(record.id, record);
    this.records.set(record.id, record);
    // Queues the listener no longer takes: their consumers (and positions) go.
    const left = before?.queues.filter((q) => !record.queues.includes(q)) ?? [];
    if (left.length > 0) await this.consumers.drop(record.id, left);
  }

  async removeListener(id: string): Promise<void> {
    const record = this.records.get(id);
    await this.put(id, undefined);
    this.records.delete(id);
    if (record) await this.consumers.drop(id, record.queues);
    for (const key of await this.keys(`${id}.>`)) await this.conn.request('remove a delivery record', () => this.open.purge(key));
    await this.history.removeListener(id);
  }

  /**
   * A queue is gone (its stream, with the consumers in it, too): listeners
   * lose it, one with no queue left is removed. Returns their ids.
   */
  async forgetQueue(queue: string): Promise<string[]> {
    const removed: string[] = [];
    for (const record of [...this.records.values()]) {
      if (!record.queues.includes(queue)) continue;
      const queues = record.queues.filter((q) => q !== queue);
      if (queues.length === 0 && !record.allQueues) {
        await this.removeListener(record.id);
        removed.push(record.id);
        continue;
      }
      const kept = { ...record, queues };
      await this.put(record.id, kept);
      this.records.set(record.id, kept);
    }
    return removed;
  }

  /**
   * Replay: the listener's consumer of the queue is made again at the new
   * position (a JetStream consumer's start cannot be changed), and its open
   * deliveries of that queue are forgotten (they go out again as new). A
   * dead one after the start goes out again as a fresh round that keeps its
   * attempts (as on LevelDB): once delivered it is delivered, its history
   * shows the failures, and retry --all-dead does not send it again. Not
   * one write, as the contract asks of LevelDB: a crash in between leaves
   * the old open records, which deliver those messages once more.
   */
  async movePosition(lid: string, queue: string, at: { sinceMs: number } | { messageId: string }): Promise<number> {
    const record = this.records.get(lid);
    if (record === undefined) throw new DiscueError('LISTENER_NOT_FOUND', `no listener with id "${lid}"`);
    const { pending, after } = await this.consumers.move(record, queue, at);
    for (const open of await this.read(this.open, lid, true)) {
      if (open.queue !== queue) continue;
      const key = this.names.recordKey(lid, open.messageId);
      if (OPEN_STATES.has(open.state)) await this.conn.request('remove a delivery record', () => this.open.purge(key));
      else if (open.state === 'dead' && open.seq !== undefined && open.seq > after) {
        const replayed: StoredRecord = { ...freshRound(plain(open)), seq: open.seq, replayed: true };
        await this.conn.request('record a delivery', () => this.open.put(key, JSON.stringify(replayed)));
      }
    }
    return pending;
  }

  async forgetQueueRecords(lid: string, queue: string): Promise<void> {
    for (const record of await this.read(this.open, lid)) {
      if (record.queue === queue) await this.conn.request('remove a delivery record', () => this.open.purge(this.names.recordKey(lid, record.messageId)));
    }
    await this.history.forgetQueue(lid, queue);
  }

  // ---- what consumers write ----------------------------------------------

  /** An open (pending/failed) or dead record, with the message's sequence. */
  async putOpen(record: DeliveryRecord, seq: number): Promise<void> {
    const stored: StoredRecord = { ...record, seq };
    await this.conn.request('record a delivery', () => this.open.put(this.names.recordKey(record.listenerId, record.messageId), JSON.stringify(stored)));
  }

  /** A delivered record goes to the history; an open one of the same message goes. */
  async putDelivered(record: DeliveryRecord, hadOpen: boolean): Promise<void> {
    const key = this.names.recordKey(record.listenerId, record.messageId);
    await this.history.add(record);
    if (hadOpen) await this.conn.request('record a delivery', () => this.open.purge(key));
  }

  /** An open or dead record goes with nothing in its place (its message is gone). */
  async dropOpen(lid: string, messageId: string): Promise<void> {
    await this.conn.request('remove a delivery record', () => this.open.purge(this.names.recordKey(lid, messageId)));
  }

  async getOpen(lid: string, messageId: string): Promise<StoredRecord | undefined> {
    const entry = await this.conn.request('read a delivery record', () => this.open.get(this.names.recordKey(lid, messageId)));
    return entry && entry.operation === 'PUT' && entry.length > 0 ? entry.json<StoredRecord>() : undefined;
  }

  /** Open and dead records of one listener with their sequences. */
  async storedOpen(lid: string): Promise<StoredRecord[]> {
    return this.read(this.open, lid, true);
  }

  // ---- reads ---------------------------------------------------------------

  async get(lid: string, messageId: string): Promise<DeliveryRecord | undefined> {
    const entry = await this.conn.request('read a delivery record', () => this.open.get(this.names.recordKey(lid, messageId)));
    if (entry && entry.operation === 'PUT' && entry.length > 0) return plain(entry.json<StoredRecord>());
    return this.history.get(lid, messageId);
  }

  async list(filter: DeliveryFilter): Promise<DeliveryRecord[]> {
    const records =
      filter.state === 'delivered'
        ? newestPerMessage((await this.history.read(filter.listenerId)).map((e) => e.record))
        : (await this.read(this.open, filter.listenerId)).filter((r) => filter.state === undefined || r.state === filter.state);
    records.sort((a, b) => (a.updatedAt === b.updatedAt ? b.messageId.localeCompare(a.messageId) : b.updatedAt.localeCompare(a.updatedAt)));
    return records.slice(0, filter.limit);
  }

  async openDeliveries(lid: string): Promise<DeliveryRecord[]> {
    return byMessage((await this.read(this.open, lid)).filter((r) => OPEN_STATES.has(r.state)));
  }

  async deadDeliveries(lid: string): Promise<DeliveryRecord[]> {
    return byMessage((await this.read(this.open, lid)).filter((r) => r.state === 'dead'));
  }

  /**
   * Keys of the records bucket under `filter`, from the stream's subjects
   * (one request, paged by the client). Not KV keys(): its consumer counts
   * the keys first, then waits for them, and a record purged in between (a
   * delivery settled meanwhile) never comes: `deliveries list` hung past the
   * CLI's 30 s. A purged key keeps its subject (the purge marker): read()
   * skips it.
   */
  private async keys(filter: string): Promise<string[]> {
    const prefix = `$KV.${this.names.deliveriesBucket}.`;
    const info = await this.conn.request('list delivery records', () =>
      this.jsm.streams.info(`KV_${this.names.deliveriesBucket}`, { subjects_filter: prefix + filter }),
    );
    return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
  }

  /** Every record in a bucket, of one listener or of all. */
  private async read(bucket: KV, lid?: string, withSeq = false): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    for (const key of await this.keys(lid === undefined ? '>' : `${lid}.>`)) {
      const entry = await this.conn.request('read a delivery record', () => bucket.get(key));
      if (entry && entry.operation === 'PUT' && entry.length > 0) {
        const record = entry.json<StoredRecord>();
        out.push(withSeq ? record : plain(record));
      }
    }
    return out;
  }
}

/** A record as the contract has it (without the stored sequence). */
function plain(record: StoredRecord): DeliveryRecord {
  const { seq: _seq, requeued: _requeued, replayed: _replayed, ...rest } = record;
  return rest;
}

/** A message delivered twice (at least once) is listed once, with its newest record. */
function newestPerMessage(records: DeliveryRecord[]): DeliveryRecord[] {
  const newest = new Map<string, DeliveryRecord>();
  for (const record of records) newest.set(`${record.listenerId} ${record.messageId}`, record);
  return [...newest.values()];
}

/** Oldest message first (ids sort in publish order). */
function byMessage<T extends DeliveryRecord>(records: T[]): T[] {
  return records.sort((a, b) => a.messageId.localeCompare(b.messageId));
}
