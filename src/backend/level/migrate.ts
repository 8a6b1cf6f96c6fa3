/**
 * Upgrade of formats 1 and 2 to format 3: listener and delivery records
 * named their queues, so a rename would have had to rewrite them all (and a
 * record whose name had no queue was dropped as an orphan, which is how a
 * trial rename lost pending retries). In format 3 they hold the queue's id
 * and the name lives only in the catalogue record.
 *
 * The ops go in one synced batch with the new format record: a crash leaves
 * the old format (upgraded again at the next open) or the new one, never a
 * mix. Messages are not rewritten: the name they carry is not read.
 */
import type { ClassicLevel } from 'classic-level';
import type { DeliveryRecord, ListenerRecord, QueueId } from '../types.js';
import type { Op } from './commit.js';
import { openRecord, seal } from './record.js';

const HIGH = '~';

/** The ops that give every listener and delivery record queue ids; `qidOf` resolves a name in the catalogue. */
export async function migrateToIds(
  db: ClassicLevel<string, string>,
  qidOf: (name: string) => QueueId | undefined,
): Promise<Op[]> {
  const ops: Op[] = [];
  for await (const [key, value] of db.iterator({ gt: 'l!', lt: 'l!' + HIGH })) {
    const record = openRecord<ListenerRecord>(key, value);
    // A damaged record stays as it is: the store reports it when it loads.
    if (record === undefined || !Array.isArray(record.queues)) continue;
    record.queues = record.queues.flatMap((name) => qidOf(name) ?? []);
    ops.push({ type: 'put', key, value: seal(key, JSON.stringify(record)) });
  }
  for (const space of ['d!', 'h!']) {
    for await (const [key, value] of db.iterator({ gt: space, lt: space + HIGH })) {
      const record = openRecord<DeliveryRecord>(key, value);
      if (record === undefined || typeof record.queue !== 'string') continue;
      const qid = qidOf(record.queue);
      // No queue by that name: left by a queue deleted just before a crash, never served again.
      if (qid === undefined) {
        ops.push({ type: 'del', key });
        continue;
      }
      record.queue = qid;
      ops.push({ type: 'put', key, value: seal(key, JSON.stringify(record)) });
    }
  }
  return ops;
}
