/**
 * Listeners and delivery progress on NATS: listener records and cursors in
 * the catalogue bucket (kept in memory, current through the catalogue
 * watch), open and dead delivery records in the deliveries bucket, and
 * delivered ones in the history bucket, whose age limit bounds it.
 *
 * Not atomic: a settle writes the record, then the cursor (supports
 * .atomicSettle is false). A crash in between delivers the message again
 * (at least once), never loses it.
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { Deliveries, DeliveryFilter, DeliveryRecord, ListenerRecord, Position } from '../types.js';
import type { Connection } from './connection.js';
import type { Names } from './names.js';

const OPEN_STATES = new Set(['pending', 'failed']);

export class NatsDeliveries implements Deliveries {
  private readonly records = new Map<string, ListenerRecord>();
  /** lid → qid → position. */
  private readonly cursors = new Map<string, Map<string, Position>>();

  constructor(
    private readonly conn: Connection,
    private readonly names: Names,
    private readonly catalog: KV,
    private readonly open: KV,
    private readonly history: KV,
    /** The creation id of a queue by name (undefined: no such queue). */
    private readonly qidOf: (queue: string) => string | undefined,
  ) {}

  /** A catalogue entry about listeners or cursors (from the initial read or the watch). */
  apply(entry: KvEntry): void {
    const [kind, lid, qid] = entry.key.split('.');
    if (lid === undefined) return;
    const put = entry.operation === 'PUT';
    if (kind === 'listener') {
      if (put) this.records.set(lid, entry.json<ListenerRecord>());
      else this.records.delete(lid);
    } else if (kind === 'cursor' && qid !== undefined) {
      if (put) this.setCursor(lid, qid, entry.string());
      else this.cursors.get(lid)?.delete(qid);
    }
  }

  private setCursor(lid: string, qid: string, position: Position): void {
    let byQueue = this.cursors.get(lid);
    if (byQueue === undefined) this.cursors.set(lid, (byQueue = new Map()));
    byQueue.set(qid, position);
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

  async saveListener(record: ListenerRecord, cursors: { queue: string; cursor: Position | undefined }[] = []): Promise<void> {
    // Cursors first: a daemon that sees the listener appear finds where it starts.
    for (const { queue, cursor } of cursors) {
      const qid = this.qidOf(queue);
      if (qid === undefined || cursor === undefined) continue;
      await this.conn.request('save a cursor', () => this.catalog.put(this.names.cursorKey(record.id, qid), cursor));
      this.setCursor(record.id, qid, cursor);
    }
    await this.conn.request('save a listener', () => this.catalog.put(this.names.listenerKey(record.id), JSON.stringify(record)));
    this.records.set(record.id, record);
  }

  async removeListener(id: string): Promise<void> {
    await this.conn.request('remove a listener', () => this.catalog.delete(this.names.listenerKey(id)));
    this.records.delete(id);
    for (const qid of this.cursors.get(id)?.keys() ?? []) {
      await this.conn.request('remove a cursor', () => this.catalog.delete(this.names.cursorKey(id, qid)));
    }
    this.cursors.delete(id);
    for (const bucket of [this.open, this.history]) {
      for (const key of await this.keys(bucket, `${id}.>`)) await this.conn.request('remove a delivery record', () => bucket.purge(key));
    }
  }

  /**
   * A queue is gone: listeners lose it (one with no queue left is removed),
   * cursors in it go. Returns the ids of the listeners removed.
   */
  async forgetQueue(queue: string, qid: string): Promise<string[]> {
    const removed: string[] = [];
    for (const record of [...this.records.values()]) {
      if (!record.queues.includes(queue)) continue;
      const queues = record.queues.filter((q) => q !== queue);
      if (queues.length === 0 && !record.allQueues) {
        await this.removeListener(record.id);
        removed.push(record.id);
        continue;
      }
      await this.saveListener({ ...record, queues });
      if (this.cursors.get(record.id)?.has(qid)) {
        await this.conn.request('remove a cursor', () => this.catalog.delete(this.names.cursorKey(record.id, qid)));
        this.cursors.get(record.id)?.delete(qid);
      }
    }
    return removed;
  }

  async forgetQueueRecords(lid: string, queue: string): Promise<void> {
    for (const bucket of [this.open, this.history]) {
      for (const record of await this.read(bucket, lid)) {
        if (record.queue === queue) await this.conn.request('remove a delivery record', () => bucket.purge(this.names.recordKey(lid, record.messageId)));
      }
    }
  }

  cursor(lid: string, queue: string): Position | undefined {
    const qid = this.qidOf(queue);
    return qid === undefined ? undefined : this.cursors.get(lid)?.get(qid);
  }

  async settle(record: DeliveryRecord, cursor: Position | undefined): Promise<void> {
    const key = this.names.recordKey(record.listenerId, record.messageId);
    if (record.state === 'delivered') {
      await this.conn.request('record a delivery', () => this.history.put(key, JSON.stringify(record)));
      await this.conn.request('record a delivery', () => this.open.purge(key));
    } else {
      await this.conn.request('record a delivery', () => this.open.put(key, JSON.stringify(record)));
    }
    if (cursor !== undefined) await this.advance(record.listenerId, record.queue, cursor);
  }

  async advance(lid: string, queue: string, cursor: Position): Promise<void> {
    const qid = this.qidOf(queue);
    if (qid === undefined) return;
    await this.conn.request('save a cursor', () => this.catalog.put(this.names.cursorKey(lid, qid), cursor));
    this.setCursor(lid, qid, cursor);
  }

  async forget(lid: string, messageId: string): Promise<void> {
    await this.conn.request('remove a delivery record', () => this.open.purge(this.names.recordKey(lid, messageId)));
  }

  async saveOpen(record: DeliveryRecord): Promise<void> {
    await this.conn.request('record a delivery', () => this.open.put(this.names.recordKey(record.listenerId, record.messageId), JSON.stringify(record)));
  }

  async get(lid: string, messageId: string): Promise<DeliveryRecord | undefined> {
    const key = this.names.recordKey(lid, messageId);
    for (const bucket of [this.open, this.history]) {
      const entry = await this.conn.request('read a delivery record', () => bucket.get(key));
      if (entry && entry.operation === 'PUT' && entry.length > 0) return entry.json<DeliveryRecord>();
    }
    return undefined;
  }

  async list(filter: DeliveryFilter): Promise<DeliveryRecord[]> {
    const bucket = filter.state === 'delivered' ? this.history : this.open;
    const records = (await this.read(bucket, filter.listenerId)).filter((r) => filter.state === undefined || r.state === filter.state);
    records.sort((a, b) => (a.updatedAt === b.updatedAt ? b.messageId.localeCompare(a.messageId) : b.updatedAt.localeCompare(a.updatedAt)));
    return records.slice(0, filter.limit);
  }

  async openDeliveries(lid: string): Promise<DeliveryRecord[]> {
    return byMessage((await this.read(this.open, lid)).filter((r) => OPEN_STATES.has(r.state)));
  }

  async deadDeliveries(lid: string): Promise<DeliveryRecord[]> {
    return byMessage((await this.read(this.open, lid)).filter((r) => r.state === 'dead'));
  }

  private async keys(bucket: KV, filter: string): Promise<string[]> {
    return this.conn.request('list delivery records', async () => {
      const keys: string[] = [];
      for await (const key of await bucket.keys(filter)) keys.push(key);
      return keys;
    });
  }

  /** Every record in a bucket, of one listener or of all. */
  private async read(bucket: KV, lid?: string): Promise<DeliveryRecord[]> {
    const out: DeliveryRecord[] = [];
    for (const key of await this.keys(bucket, lid === undefined ? '>' : `${lid}.>`)) {
      const entry = await this.conn.request('read a delivery record', () => bucket.get(key));
      if (entry && entry.operation === 'PUT' && entry.length > 0) out.push(entry.json<DeliveryRecord>());
    }
    return out;
  }
}

/** Oldest message first (ids sort in publish order). */
function byMessage(records: DeliveryRecord[]): DeliveryRecord[] {
  return records.sort((a, b) => a.messageId.localeCompare(b.messageId));
}
