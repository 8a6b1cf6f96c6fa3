/**
 * `discue daemon repair`: salvages a damaged database, offline.
 *
 * First the whole data directory is copied aside (nothing LevelDB's repair
 * drops is lost for good), then LevelDB's RepairDB rebuilds the manifest
 * from every table and log it finds (classic-level: ClassicLevel.repair).
 * Then the counters are recounted from the messages actually recovered, a
 * queue whose record was lost is rebuilt from its messages' envelopes, and
 * the report says what came back.
 */
import { ClassicLevel } from 'classic-level';
import { cp, stat } from 'node:fs/promises';
import { DiscueError } from '../../protocol/errors.js';
import type { Envelope } from '../../protocol/wire.js';
import { errorCause } from './guard.js';
import { FORMAT } from './level.js';
import { openRecord, seal } from './record.js';

const HIGH = '~';

export interface RepairReport {
  dataDir: string;
  /** Where the untouched copy of the directory is. */
  backup: string;
  queues: number;
  messages: number;
  /** Records that fail their checksum: kept, skipped when read. */
  damaged: number;
  /** Queues whose record was lost and was rebuilt from their messages. */
  rebuilt: string[];
}

interface QueueRecord {
  name: string;
  qid: string;
  createdAt: string;
  messages: number;
  bytes: number;
  lastId?: string;
  lastPublishedAt?: string;
}

export async function repairStore(dataDir: string, now = new Date()): Promise<RepairReport> {
  const info = await stat(dataDir).catch(() => undefined);
  if (!info?.isDirectory()) throw new DiscueError('STORAGE_ERROR', `no data directory at ${dataDir}: nothing to repair`);
  const backup = `${dataDir}.bak-${now.toISOString().replace(/[:.]/g, '-')}`;
  try {
    await cp(dataDir, backup, { recursive: true, errorOnExist: true, force: false });
  } catch (err) {
    throw new DiscueError('STORAGE_ERROR', `cannot copy ${dataDir} aside to ${backup} before repairing: ${(err as Error).message}; nothing was changed`, {
      cause: err,
    });
  }
  try {
    await ClassicLevel.repair(dataDir);
  } catch (err) {
    throw new DiscueError('STORAGE_DAMAGED', `LevelDB could not repair ${dataDir}: ${errorCause(err).message}; the copy is at ${backup}`, {
      cause: err,
    });
  }
  const db = new ClassicLevel<string, string>(dataDir, { keyEncoding: 'utf8', valueEncoding: 'utf8', createIfMissing: false });
  try {
    await db.open();
  } catch (err) {
    throw new DiscueError('STORAGE_DAMAGED', `the repaired database at ${dataDir} does not open: ${errorCause(err).message}; the copy is at ${backup}`, {
      cause: err,
    });
  }
  try {
    return { dataDir, backup, ...(await recount(db, now)) };
  } finally {
    await db.close();
  }
}

async function recount(db: ClassicLevel<string, string>, now: Date): Promise<Omit<RepairReport, 'dataDir' | 'backup'>> {
  const byQid = new Map<string, QueueRecord>();
  const names = new Set<string>();
  for await (const [key, value] of db.iterator({ gt: 'q!', lt: 'q!' + HIGH })) {
    const record = openRecord<QueueRecord>(key, value);
    if (record === undefined || typeof record.qid !== 'string') continue;
    byQid.set(record.qid, { ...record, messages: 0, bytes: 0 });
    names.add(record.name);
  }
  const deleted = new Set<string>();
  for await (const key of db.keys({ gt: 'dq!', lt: 'dq!' + HIGH })) deleted.add(key.slice(3));
  let messages = 0;
  let damaged = 0;
  let lastId = (await db.get('meta!lastId')) ?? '';
  const rebuilt: string[] = [];
  for await (const [key, value] of db.iterator({ gt: 'm!', lt: 'm!' + HIGH })) {
    const qid = key.slice(2, key.indexOf('!', 2));
    if (deleted.has(qid)) continue; // being cleared; the daemon finishes that
    const id = key.slice(3 + qid.length);
    const envelope = openRecord<Envelope>(key, value);
    const intact = envelope !== undefined && typeof envelope.data === 'string' && envelope.id === id;
    let record = byQid.get(qid);
    if (record === undefined) {
      // The queue's record was lost, its messages were not: bring it back
      // under the name its messages carry (formats 1 and 2 stored it), or
      // else under one made of its id.
      if (!intact) {
        damaged++;
        continue;
      }
      const name = typeof envelope.queue === 'string' && !names.has(envelope.queue) ? envelope.queue : `recovered-${qid}`;
      record = { name, qid, createdAt: now.toISOString(), messages: 0, bytes: 0 };
      byQid.set(qid, record);
      names.add(record.name);
      rebuilt.push(record.name);
    }
    record.messages++;
    messages++;
    if (!intact) {
      damaged++;
      continue;
    }
    record.bytes += Buffer.byteLength(envelope.data, 'utf8');
    if (record.lastId === undefined || id > record.lastId) {
      record.lastId = id;
      record.lastPublishedAt = envelope.publishedAt;
    }
    if (id > lastId) lastId = id;
  }
  const batch = db.batch();
  for (const record of byQid.values()) batch.put('q!' + record.name, seal('q!' + record.name, JSON.stringify(record)));
  if (lastId !== '') batch.put('meta!lastId', lastId);
  if ((await db.get('meta!format')) === undefined) batch.put('meta!format', await namesOrIds(db, byQid));
  await batch.write({ sync: true });
  return { queues: byQid.size, messages, damaged, rebuilt };
}

/**
 * The format of a database that lost its format record, told by what its
 * listener records hold: queue names (format 2, upgraded at the next open)
 * or queue ids (format 3). Without listeners nothing depends on it.
 */
async function namesOrIds(db: ClassicLevel<string, string>, byQid: Map<string, QueueRecord>): Promise<string> {
  for await (const [key, value] of db.iterator({ gt: 'l!', lt: 'l!~' })) {
    const queues = openRecord<{ queues?: unknown }>(key, value)?.queues;
    if (!Array.isArray(queues) || queues.length === 0) continue;
    return queues.some((q) => typeof q === 'string' && byQid.has(q)) ? FORMAT : '2';
  }
  return FORMAT;
}
