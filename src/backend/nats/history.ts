/**
 * Delivered records, kept as the LevelDB backend keeps them: the newest
 * HISTORY_KEEP per listener. One stream, one subject per listener, and the
 * server bounds each subject by itself (max_msgs_per_subject) and drops what
 * is older than a week, so no daemon prunes and a cluster agrees. A read
 * takes a listener's subject whole (at most HISTORY_KEEP records).
 *
 *   stream <NS>_HISTORY   subject <ns>.h.<lid>   payload: the DeliveryRecord (JSON)
 */
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { DeliveryRecord } from '../types.js';
import type { Connection } from './connection.js';
import type { Names } from './names.js';
import { HISTORY_KEEP } from '../../protocol/defaults.js';

const HISTORY_AGE_MS = 7 * 24 * 3_600_000;
const NS_PER_MS = 1_000_000;

export interface HistoryEntry {
  seq: number;
  record: DeliveryRecord;
}

export class History {
  constructor(
    private readonly conn: Connection,
    private readonly jsm: JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly names: Names,
  ) {}

  async open(replicas: number): Promise<void> {
    const config = {
      name: this.names.historyStream,
      subjects: [`${this.names.historySubject('*')}`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      max_msgs_per_subject: HISTORY_KEEP,
      max_age: HISTORY_AGE_MS * NS_PER_MS,
    };
    // An existing stream is used as it is (as the KV buckets are): another
    // daemon may have made it with other replicas, and add() of a different
    // configuration is refused.
    const exists = await this.conn.request('open the delivery history', () => this.jsm.streams.info(config.name)).then(
      () => true,
      (err: unknown) => {
        if (/stream not found/i.test(String((err as Error)?.message))) return false;
        throw err;
      },
    );
    if (!exists) await this.conn.request('open the delivery history', () => this.jsm.streams.add(config));
  }

  async add(record: DeliveryRecord): Promise<void> {
    await this.conn.request('record a delivery', () => this.js.publish(this.names.historySubject(record.listenerId), JSON.stringify(record)));
  }

  /** A listener's records (or every listener's), oldest first. */
  async read(lid?: string): Promise<HistoryEntry[]> {
    const stream = this.names.historyStream;
    const info = await this.conn.request('read the delivery history', () =>
      this.jsm.consumers.add(stream, {
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.All,
        filter_subject: this.names.historySubject(lid ?? '*'),
        inactive_threshold: 30_000 * NS_PER_MS,
        mem_storage: true,
      }),
    );
    try {
      const out: HistoryEntry[] = [];
      let left = info.num_pending;
      if (left === 0) return out;
      const consumer = await this.js.consumers.get(stream, info.name);
      while (left > 0) {
        const before = left;
        const batch = await consumer.fetch({ max_messages: Math.min(left, 1_000), expires: 5_000 });
        for await (const m of batch) {
          out.push({ seq: m.seq, record: m.json<DeliveryRecord>() });
          left--;
        }
        // Removed meanwhile (the subject's bound, its age): what was there is read.
        if (left === before) break;
      }
      return out;
    } finally {
      await this.jsm.consumers.delete(stream, info.name).catch(() => undefined);
    }
  }

  /** The newest record of a message. */
  async get(lid: string, messageId: string): Promise<DeliveryRecord | undefined> {
    const entries = await this.read(lid);
    for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.record.messageId === messageId) return entries[i]!.record;
    return undefined;
  }

  async removeListener(lid: string): Promise<void> {
    await this.conn.request('remove a delivery history', () => this.jsm.streams.purge(this.names.historyStream, { filter: this.names.historySubject(lid) }));
  }

  /** Removes a listener's records of one queue (a deleted queue). */
  async forgetQueue(lid: string, queue: string): Promise<void> {
    for (const { seq, record } of await this.read(lid)) {
      if (record.queue === queue) await this.conn.request('remove a delivery record', () => this.jsm.streams.deleteMessage(this.names.historyStream, seq, false));
    }
  }
}
