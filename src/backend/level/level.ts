/**
 * LevelDB storage (classic-level).
 *
 * Keys (utf8):
 *   meta!format          storage format version
 *   meta!lastId          newest message id made, so ids keep increasing across restarts
 *   q!<name>             queue record (JSON): the one place a queue's name is kept
 *   m!<qid>!<id>         message envelope (JSON, without the queue), qid = the queue's creation id
 *   dq!<qid>             a deleted queue whose messages are still being cleared
 *   k!<qid>!<key>        idempotency key → {"id","at"} of the first message with it (dedupe.ts)
 *
 * Messages are keyed by the queue's creation id rather than its name, so a
 * queue deleted and created again under the same name never sees the old
 * one's messages, even while they are still being cleared in the background.
 *
 * Counters (messages, bytes) live in the queue record and change in the same
 * synced batch as the messages they count, so they are right after any crash.
 * In memory they change with the write and are taken back if it fails
 * (GroupCommitter's undo), so they never count what is not stored.
 *
 * Records carry a checksum (record.ts, storage format 2); a damaged one is
 * logged, counted in `daemon status`, and skipped: never served, and never
 * in the way of the good ones.
 */
import { ClassicLevel } from 'classic-level';
import { mkdir, readdir } from 'node:fs/promises';
import { DiscueError } from '../../protocol/errors.js';
import { IdGenerator, firstIdAt, isMessageId, lastIdBefore } from '../../protocol/ids.js';
import type { Envelope, MessageInput, QueueInfo } from '../../protocol/wire.js';
import { Catalogue } from '../catalogue.js';
import { GroupCommitter } from './commit.js';
import type { Op } from './commit.js';
import { Appended } from './appended.js';
import { LevelConsumer } from './consumer.js';
import { DeliveryStore } from './deliveries.js';
import { DEFAULT_DEDUPE, KEY_HIGH, KEY_PREFIX, KeyIndex, keyPrefix } from './dedupe.js';
import type { KeyEntry } from './dedupe.js';
import { StorageGuard, errorCause } from './guard.js';
import { tornLogTail } from './logcheck.js';
import { migrateToIds } from './migrate.js';
import { openRecord, seal } from './record.js';
import type {
  AppendListener,
  AppendOutcome,
  Consumer,
  ConsumerOptions,
  DedupeOptions,
  ListenerRecord,
  ListOptions,
  MessagePage,
  Position,
  QueueConfig,
  QueueEvent,
  QueueEventListener,
  QueueId,
  QueuePatch,
  StartAt,
  Store,
  StoreLog,
  StoreStats,
} from '../types.js';

/**
 * 3: listener and delivery records name queues by id, envelopes not at all
 * (migrate.ts upgrades 1 and 2 at open). 2: records carry a checksum; format
 * 1 records (plain JSON) are read as they are.
 */
export const FORMAT = '3';
const READABLE_FORMATS = new Set(['1', '2', '3']);
const CHUNK = 5_000;
/** Sorts after every id character. */
const HIGH = '~';
/** Keys fetched per call while counting a backlog (see countMessages). */
const COUNT_PAGE = 1_000;

interface QueueRecord {
  name: string;
  qid: string;
  createdAt: string;
  schema?: Record<string, unknown>;
  retentionMs?: number;
  maxMessages?: number;
  messages: number;
  bytes: number;
  lastId?: string;
  lastPublishedAt?: string;
}

export interface LevelStoreOptions {
  /** Idempotency key window and bound (default 10 minutes, 100,000 keys per queue). */
  dedupe?: DedupeOptions;
  /** Where damaged records and storage faults are reported. */
  log?: StoreLog;
}

/** Damaged keys remembered for reporting each once (a bound, not a registry). */
const DAMAGED_KEEP = 10_000;

export class LevelStore implements Store {
  private readonly db: ClassicLevel<string, string>;
  private readonly committer: GroupCommitter;
  /** The catalogue, by name and by id (the same records). */
  private readonly queues = new Catalogue<QueueRecord>();
  private readonly ids = new IdGenerator();
  private readonly appendListeners: AppendListener[] = [];
  private readonly queueListeners: QueueEventListener[] = [];
  /** Open consumers by queue name: appends and removals reach them directly, in order. */
  private readonly consumers = new Map<string, Set<LevelConsumer>>();
  readonly deliveries: DeliveryStore;
  /** LevelDB keeps one process's data on one disk: the daemon runs retention, an acknowledgement is one batch. */
  readonly supports = { retention: false, clustering: false, atomicSettle: true } as const;
  /** Per-queue chains that serialize deletions (purge, trim, retention, delete). */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly trimming = new Set<string>();
  private background = new Set<Promise<unknown>>();
  private closed = false;
  private readonly keys: KeyIndex;
  private readonly guard: StorageGuard;
  private readonly log: StoreLog | undefined;
  /** Damaged records found since start (keys), each logged once. */
  private readonly damaged = new Set<string>();
  /** Found when opening (a torn write-ahead log): shown by `daemon status` until restart. */
  private readonly startWarnings: string[] = [];

  constructor(
    private readonly location: string,
    options: LevelStoreOptions = {},
  ) {
    this.db = new ClassicLevel<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8', createIfMissing: false });
    // abstract-level opens the database by itself one microtask after the
    // constructor unless told otherwise, and a close() before then is the
    // one way to tell it. open() must look at the directory first: LevelDB's
    // recovery rewrites the write-ahead log into a table and deletes it, so
    // a torn log seen after that is no log at all (the daemon started
    // without its warning, seen under load in CI), and it may create a
    // database over files whose CURRENT is gone.
    void this.db.close();
    this.log = options.log;
    this.guard = new StorageGuard(this.db, location, options.log);
    this.committer = new GroupCommitter(this.db, this.guard);
    this.deliveries = new DeliveryStore(
      this.db,
      this.committer,
      {
        hasQueue: (queue) => this.queues.hasId(queue),
        queueIds: () => this.queues.ids(),
        positionAt: (queue, start) => this.positionAt(this.queues.withId(queue), start),
        positionBefore: (queue, messageId) => this.positionBefore(queue, messageId),
        countMessages: (queue, options) => this.countMessages(queue, options),
      },
      this.guard,
      (key) => this.reportDamaged(key),
    );
    this.keys = new KeyIndex(options.dedupe ?? DEFAULT_DEDUPE);
  }

  async open(): Promise<void> {
    try {
      await mkdir(this.location, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new DiscueError('STORAGE_ERROR', `cannot create the data directory ${this.location}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const fresh = await this.inspect();
    try {
      await this.db.open({ createIfMissing: fresh });
    } catch (err) {
      throw openError(this.location, err);
    }
    try {
      await this.load(fresh);
    } catch (err) {
      // LevelDB opens tables lazily: a damaged one ("not an sstable") shows up here, not at open.
      await this.db.close().catch(() => undefined);
      throw err instanceof DiscueError ? err : openError(this.location, err);
    }
  }

  /** Reads what the daemon keeps in memory: format, queues, listeners, the newest id. */
  private async load(fresh: boolean): Promise<void> {
    const format = await this.db.get('meta!format');
    // A database created but killed before its format record was synced holds nothing: still fresh.
    let empty = true;
    if (format === undefined && !fresh) for await (const _key of this.db.keys({ limit: 1 })) empty = false;
    if (format === undefined && !empty) {
      throw new DiscueError(
        'STORAGE_DAMAGED',
        `the database at ${this.location} has lost its format record, so it is not known to be a discue database (or it was damaged); ` +
          'stop here and run `discue daemon repair` (it copies the directory aside first)',
      );
    }
    if (format !== undefined && !READABLE_FORMATS.has(format)) {
      throw new DiscueError('STORAGE_ERROR', `the database at ${this.location} has format ${format}; this discue reads ${[...READABLE_FORMATS].join(' and ')}: upgrade discue`);
    }
    for await (const [key, value] of this.db.iterator({ gt: 'q!', lt: 'q!' + HIGH })) {
      const record = openRecord<QueueRecord>(key, value);
      if (record === undefined || typeof record.qid !== 'string' || typeof record.name !== 'string') {
        // Its messages stay on disk (for `daemon repair`), but the queue cannot be served.
        this.reportDamaged(key);
        continue;
      }
      this.queues.add(record);
      if (record.lastId) this.ids.observe(record.lastId);
    }
    // Records of the older formats named queues: one synced batch gives them ids (and the new format).
    if (format !== FORMAT) {
      const ops = format === undefined ? [] : await migrateToIds(this.db, (name) => this.queues.find(name)?.qid);
      await this.db.batch([...ops, { type: 'put', key: 'meta!format', value: FORMAT }], { sync: true });
    }
    await this.deliveries.load();
    const lastId = await this.db.get('meta!lastId');
    if (lastId && isMessageId(lastId)) this.ids.observe(lastId);
    // Resume clearing queues that were deleted before a crash.
    for await (const key of this.db.keys({ gt: 'dq!', lt: 'dq!' + HIGH })) {
      this.track(this.clearDeleted(key.slice(3)));
    }
    await this.loadKeys();
  }

  /** Idempotency keys still inside their window, so a retry after a crash is still recognised. */
  private async loadKeys(): Promise<void> {
    const stored: [string, string][] = [];
    for await (const entry of this.db.iterator({ gt: KEY_PREFIX, lt: KEY_PREFIX + HIGH })) stored.push(entry);
    const live = new Set(this.queues.ids());
    const stale = this.keys.load(stored, live, Date.now());
    if (stale.length > 0) await this.committer.commit(stale);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.background]);
    await this.committer.drain();
    await this.guard.close();
    await this.db.close();
  }

  onAppend(listener: AppendListener): void {
    this.appendListeners.push(listener);
  }

  onQueueEvent(listener: QueueEventListener): void {
    this.queueListeners.push(listener);
  }

  consumer(listener: ListenerRecord, queue: QueueId, options: ConsumerOptions): Consumer {
    const record = this.queues.withId(queue);
    const stored = options.durable ? this.deliveries.position(listener.id, queue) : undefined;
    const start = stored ?? this.positionAt(record, options.start ?? 'all');
    let open = this.consumers.get(queue);
    if (!open) {
      open = new Set();
      this.consumers.set(queue, open);
    }
    const consumers = open;
    const consumer: LevelConsumer = new LevelConsumer(
      listener,
      queue,
      Math.max(1, options.maxInFlight),
      this,
      options.durable ? this.deliveries : undefined,
      this.log,
      start,
      () => {
        consumers.delete(consumer);
        if (consumers.size === 0 && this.consumers.get(queue) === consumers) this.consumers.delete(queue);
      },
      options.filters,
      options.onPassed,
    );
    consumers.add(consumer);
    return consumer;
  }

  /** Where `start` is in a queue now: before its first message, after its last, or before a time. */
  private positionAt(record: QueueRecord, start: StartAt): Position | undefined {
    if (start === 'all') return undefined;
    if (start === 'end') return record.lastId;
    if ('afterIds' in start) return start.afterIds[record.qid] ?? record.lastId;
    const before = lastIdBefore(start.sinceMs);
    return record.lastId === undefined || record.lastId > before ? before : record.lastId;
  }

  /** The id of the message stored before `messageId`, or '' (before every message) when it is the first. */
  private async positionBefore(queue: QueueId, messageId: string): Promise<Position> {
    await this.getMessage(queue, messageId);
    const prefix = msgPrefix(this.queues.withId(queue));
    return this.guard.use(async () => {
      for await (const key of this.db.keys({ gt: prefix, lt: prefix + messageId, reverse: true, limit: 1 })) return key.slice(prefix.length);
      return '';
    });
  }

  stats(): StoreStats {
    let messages = 0;
    for (const q of this.queues.entries()) messages += q.messages;
    const warnings = [...this.startWarnings];
    if (this.guard.full) warnings.push(`the disk holding ${this.location} is full: writes are refused until space is free`);
    if (this.damaged.size > 0) {
      warnings.push(
        `${this.damaged.size >= DAMAGED_KEEP ? 'at least ' : ''}${this.damaged.size} damaged record(s) found and skipped, never served (their keys are in \`discue daemon logs\`)`,
      );
    }
    return { queues: this.queues.size, messages, warnings };
  }

  // ---- queues ------------------------------------------------------------

  listQueues(): QueueInfo[] {
    return this.queues.sorted().map(toInfo);
  }

  queueId(name: string): QueueId {
    return this.queues.named(name).qid;
  }

  queueName(id: QueueId): string | undefined {
    return this.queues.nameOf(id);
  }

  queueIds(): QueueId[] {
    return this.queues.ids();
  }

  hasQueue(id: QueueId): boolean {
    return this.queues.hasId(id);
  }

  queueConfig(id: QueueId): QueueConfig {
    return this.queues.config(id);
  }

  async getQueue(name: string): Promise<QueueInfo> {
    const record = this.queues.named(name);
    const info = toInfo(record);
    await this.guard.use(async () => {
      for await (const key of this.db.keys({ gt: msgPrefix(record), lt: msgPrefix(record) + HIGH, limit: 1 })) {
        info.firstId = key.slice(msgPrefix(record).length);
      }
    });
    return info;
  }

  async createQueue(config: QueueConfig): Promise<QueueInfo> {
    if (this.queues.has(config.name)) {
      throw new DiscueError('QUEUE_EXISTS', `queue "${config.name}" already exists`);
    }
    const record: QueueRecord = {
      name: config.name,
      qid: this.ids.next(),
      createdAt: new Date().toISOString(),
      messages: 0,
      bytes: 0,
    };
    if (config.schema !== undefined) record.schema = config.schema;
    if (config.retentionMs !== undefined) record.retentionMs = config.retentionMs;
    if (config.maxMessages !== undefined) record.maxMessages = config.maxMessages;
    this.queues.add(record);
    this.markDirty(record);
    await this.committer.commit([], () => this.queues.remove(record));
    this.emitQueueEvent({ type: 'created', queue: record.qid, name: record.name });
    return toInfo(record);
  }

  async renameQueue(from: string, to: string): Promise<QueueInfo> {
    const record = this.queues.named(from);
    if (this.queues.has(to)) throw new DiscueError('QUEUE_EXISTS', `queue "${to}" already exists`);
    this.queues.rename(record, to);
    // Both keys go in the same synced batch (the committer writes dirty
    // records together): a crash leaves the queue under one name or the
    // other, never both or neither.
    this.markDirtyName(from);
    this.markDirty(record);
    await this.committer.commit([], () => {
      if (this.queues.find(to) !== record || this.queues.has(from)) return;
      this.queues.rename(record, from);
    });
    this.emitQueueEvent({ type: 'renamed', queue: record.qid, name: to, previous: from });
    return toInfo(record);
  }

  async updateQueue(name: string, patch: QueuePatch): Promise<QueueInfo> {
    const record = this.queues.named(name);
    const before = { schema: record.schema ?? null, retentionMs: record.retentionMs ?? null, maxMessages: record.maxMessages ?? null };
    applyPatch(record, 'schema', patch.schema);
    applyPatch(record, 'retentionMs', patch.retentionMs);
    applyPatch(record, 'maxMessages', patch.maxMessages);
    this.markDirty(record);
    await this.committer.commit([], () => {
      applyPatch(record, 'schema', before.schema);
      applyPatch(record, 'retentionMs', before.retentionMs);
      applyPatch(record, 'maxMessages', before.maxMessages);
    });
    for (const listener of this.queueListeners) listener({ type: 'updated', queue: record.qid, name: record.name });
    if (record.maxMessages !== undefined && record.messages > record.maxMessages) this.scheduleTrim(record);
    if (record.retentionMs !== undefined) this.track(this.enforceRetentionFor(record, Date.now()));
    return toInfo(record);
  }

  async deleteQueue(name: string): Promise<number> {
    const record = this.queues.named(name);
    const count = record.messages;
    this.queues.remove(record);
    // Its consumers are closed by their owners on the `deleted` event; until then they get nothing more.
    this.consumers.delete(record.qid);
    this.keys.forget(record.qid);
    // The record's removal, its listener registrations and cursors, and the
    // clean-up marker go to disk together; the messages themselves are
    // cleared afterwards (and again after a crash).
    this.markDirtyName(name);
    const { ops, removed } = this.deliveries.forgetQueue(record.qid);
    // Not undone on failure beyond the queue itself: the listeners' in-memory
    // registrations changed too, and a daemon that failed to delete a queue
    // says so; a restart reloads everything from disk.
    await this.committer.commit([...ops, { type: 'put', key: 'dq!' + record.qid, value: name }], () => {
      if (!this.queues.has(name) && !this.queues.hasId(record.qid)) this.queues.add(record);
    });
    this.emitQueueEvent({ type: 'deleted', queue: record.qid, name, removedListeners: removed });
    this.track(this.clearDeleted(record.qid));
    if (removed.length > 0) this.track(this.deliveries.clearListenerData(removed));
    return count;
  }

  async purgeQueue(name: string): Promise<number> {
    const record = this.queues.named(name);
    const upTo = record.lastId;
    if (upTo === undefined) return 0;
    return this.withLock(record, () => this.deleteRange(record, { lte: msgPrefix(record) + upTo }));
  }

  // ---- messages ----------------------------------------------------------

  async appendOnce(queue: string, inputs: MessageInput[]): Promise<AppendOutcome> {
    if (!inputs.some((input) => input.key !== undefined)) {
      const stored = await this.append(queue, inputs);
      const through = stored[stored.length - 1]?.id ?? '';
      return { ids: stored.map((m) => m.id), through, stored, duplicates: [], publishedAt: stored[0]?.publishedAt ?? '' };
    }
    const { qid } = this.queues.withId(queue);
    const now = Date.now();
    // Everything from here to append()'s commit runs without yielding, so a
    // concurrent publish of the same key finds this one's entry (pending)
    // instead of storing a second message.
    const fresh: MessageInput[] = [];
    /** Per input: its slot in `fresh` (a repeat within the batch shares the first's), or the earlier entry. */
    const sources: ({ slot: number; repeat: boolean } | { earlier: KeyEntry })[] = new Array(inputs.length);
    const inBatch = new Map<string, number>();
    for (let i = 0; i < inputs.length; i++) {
      const key = inputs[i]!.key;
      const seen = key === undefined ? undefined : this.keys.lookup(qid, key, now);
      const slot = key === undefined ? undefined : inBatch.get(key);
      if (seen !== undefined) sources[i] = { earlier: seen };
      else if (slot !== undefined) sources[i] = { slot, repeat: true };
      else {
        if (key !== undefined) inBatch.set(key, fresh.length);
        sources[i] = { slot: fresh.length, repeat: false };
        fresh.push(inputs[i]!);
      }
    }
    const added: { key: string; entry: KeyEntry }[] = [];
    const writing = this.append(queue, fresh, (envelopes) => {
      const ops: Op[] = [];
      const at = Date.parse(envelopes[0]!.publishedAt);
      for (let j = 0; j < fresh.length; j++) {
        const key = fresh[j]!.key;
        if (key === undefined) continue;
        const entry: KeyEntry = { id: envelopes[j]!.id, at };
        added.push({ key, entry });
        for (const op of this.keys.add(qid, key, entry)) ops.push(op);
      }
      return ops;
    });
    const written = writing.then(() => undefined);
    written.catch(() => undefined); // awaited only by duplicates, if any
    for (const { entry } of added) entry.pending = written;
    let stored: Envelope[];
    try {
      stored = await writing;
    } catch (err) {
      for (const { key, entry } of added) this.keys.drop(qid, key, entry);
      throw err;
    }
    for (const { entry } of added) delete entry.pending;
    // A duplicate is answered only once its first message is on disk: the
    // reply must never name an id a crash could still take back.
    const ids: string[] = new Array(inputs.length);
    const duplicates: number[] = [];
    let firstEarlier: KeyEntry | undefined;
    for (let i = 0; i < inputs.length; i++) {
      const source = sources[i]!;
      if ('earlier' in source) {
        await source.earlier.pending;
        firstEarlier ??= source.earlier;
        ids[i] = source.earlier.id;
        duplicates.push(i);
      } else {
        ids[i] = stored[source.slot]!.id;
        if (source.repeat) duplicates.push(i);
      }
    }
    const publishedAt = stored[0]?.publishedAt ?? new Date(firstEarlier!.at).toISOString();
    // A duplicate's id is older than the new ones: the furthest of all of them.
    let through = ids[0]!;
    for (const id of ids) if (id > through) through = id;
    return { ids, through, stored, duplicates, publishedAt };
  }

  /**
   * Stores messages. `alsoWrite` adds ops to the same synced batch, given the
   * envelopes just made (appendOnce writes the idempotency keys with it).
   */
  append(queue: QueueId, inputs: MessageInput[], alsoWrite?: (envelopes: Envelope[]) => Op[]): Promise<Envelope[]> {
    return this.write(queue, inputs, undefined, alsoWrite);
  }

  /**
   * Exported messages, with their ids and times: their keys must sort after
   * the queue's last one (cursors and pages go by key), so an import goes
   * into a new queue, in the order exported; later ids sort after them.
   */
  async importMessages(queue: QueueId, messages: Envelope[]): Promise<void> {
    const record = this.queues.withId(queue);
    let last = record.lastId ?? '';
    for (const m of messages) {
      if (!isMessageId(m.id) || m.id <= last) {
        throw new DiscueError('INVALID_ARGUMENT', `message ${m.id} does not come after ${last || 'the start'} in queue "${record.name}": import into a new queue, in the order exported`);
      }
      last = m.id;
    }
    if (messages.length === 0) return;
    this.ids.observe(last);
    await this.write(queue, messages, messages);
  }

  private async write(queue: QueueId, inputs: MessageInput[], given: Envelope[] | undefined, alsoWrite?: (envelopes: Envelope[]) => Op[]): Promise<Envelope[]> {
    const record = this.queues.withId(queue);
    const name = record.name;
    const prefix = msgPrefix(record);
    const ops: Op[] = new Array(inputs.length);
    const envelopes: Envelope[] = new Array(inputs.length);
    let publishedAt = '';
    let bytes = 0;
    for (let i = 0; i < inputs.length; i++) {
      const input = inputs[i]!;
      const id = given === undefined ? this.ids.next() : given[i]!.id;
      if (given !== undefined) publishedAt = given[i]!.publishedAt;
      else if (i === 0) publishedAt = this.ids.lastTimeIso;
      envelopes[i] =
        input.name === undefined
          ? { id, queue: name, data: input.data, publishedAt }
          : { id, queue: name, name: input.name, data: input.data, publishedAt };
      const key = prefix + id;
      ops[i] = { type: 'put', key, value: seal(key, storedJson(id, input.name, input.data, publishedAt)) };
      bytes += Buffer.byteLength(input.data, 'utf8');
    }
    const last = envelopes[envelopes.length - 1];
    if (last === undefined) return envelopes;
    const undo = counterUndo(record, inputs.length, bytes, last.id);
    record.messages += inputs.length;
    record.bytes += bytes;
    record.lastId = last.id;
    record.lastPublishedAt = publishedAt;
    this.markDirty(record);
    const lastId = last.id;
    this.committer.markDirty('meta!lastId', () => ({ type: 'put', key: 'meta!lastId', value: lastId }));
    if (alsoWrite) for (const op of alsoWrite(envelopes)) ops.push(op);
    await this.committer.commit(ops, undo);
    const consumers = this.consumers.get(record.qid);
    if (consumers) {
      const batch = new Appended(envelopes);
      for (const consumer of consumers) consumer.offer(batch);
    }
    for (const listener of this.appendListeners) listener(record.qid, envelopes);
    if (record.maxMessages !== undefined && record.messages > record.maxMessages) this.scheduleTrim(record);
    return envelopes;
  }

  async listMessages(queue: QueueId, options: ListOptions): Promise<Envelope[]> {
    return (await this.readMessages(queue, options)).messages;
  }

  async readMessages(queue: QueueId, options: ListOptions): Promise<MessagePage> {
    const record = this.queues.withId(queue);
    const prefix = msgPrefix(record);
    const range: { gt?: string; gte?: string; lt: string } = { lt: prefix + HIGH };
    if (options.next !== undefined) {
      // The token is the id of the last key the page before read (good or damaged).
      if (!isMessageId(options.next)) {
        throw new DiscueError('INVALID_ARGUMENT', `invalid page token ${JSON.stringify(options.next)}: hand back the "next" of the page before, unchanged`);
      }
      range.gt = prefix + options.next;
    } else {
      const afterTime = options.sinceMs === undefined ? undefined : prefix + firstIdAt(options.sinceMs);
      const afterId = options.afterId === undefined ? undefined : prefix + options.afterId;
      if (afterId !== undefined && (afterTime === undefined || afterId >= afterTime)) range.gt = afterId;
      else if (afterTime !== undefined) range.gte = afterTime;
      else range.gt = prefix;
    }
    const page: MessagePage = { messages: [], damaged: [] };
    // No `limit` on the iterator: damaged records are read past, so a page
    // still holds `limit` good messages and an empty page still means the end.
    await this.guard.use(async () => {
      for await (const [key, value] of this.db.iterator(range)) {
        page.next = key.slice(prefix.length);
        const envelope = openEnvelope(key, value, prefix, record.name);
        if (envelope === undefined) {
          this.reportDamaged(key);
          page.damaged.push(key.slice(prefix.length));
          continue;
        }
        page.messages.push(envelope);
        if (page.messages.length >= options.limit) break;
      }
    });
    return page;
  }

  async countMessages(queue: QueueId, options: { afterId?: string }): Promise<{ count: number; lastId: string | undefined }> {
    const record = this.queues.withId(queue);
    const prefix = msgPrefix(record);
    // Under the deletion lock: a removal reported while the count ran would
    // otherwise be either in its snapshot or not, and a caller keeping the
    // count up to date could not tell which.
    return this.withLock(record, () =>
      this.guard.use(async () => {
        let count = 0;
        let last: string | undefined;
        // In pages, not `for await` key by key: each listener added `from all`
        // counts the whole queue, and per-key promises made 100 listeners on a
        // 100,000-message queue allocate ~190 MiB of garbage in their first
        // seconds (sampled heap profile), most of the daemon's RSS growth then.
        const keys = this.db.keys({ gt: prefix + (options.afterId ?? ''), lt: prefix + HIGH });
        try {
          for (let page = await keys.nextv(COUNT_PAGE); page.length > 0; page = await keys.nextv(COUNT_PAGE)) {
            count += page.length;
            last = page[page.length - 1];
          }
        } finally {
          await keys.close();
        }
        return { count, lastId: last?.slice(prefix.length) };
      }),
    );
  }

  async getMessage(queue: QueueId, id: string): Promise<Envelope> {
    const record = this.queues.withId(queue);
    const key = msgPrefix(record) + id;
    const value = await this.guard.use(() => this.db.get(key));
    if (value === undefined) throw messageNotFound(record.name, id);
    const envelope = openEnvelope(key, value, msgPrefix(record), record.name);
    if (envelope === undefined) {
      this.reportDamaged(key);
      throw new DiscueError(
        'DATA_CORRUPT',
        `message ${id} in queue "${record.name}" is damaged on disk (checksum mismatch) and cannot be served; \`discue messages delete ${record.name} ${id}\` removes it`,
      );
    }
    return envelope;
  }

  async deleteMessage(queue: QueueId, id: string): Promise<void> {
    const record = this.queues.withId(queue);
    await this.withLock(record, async () => {
      const key = msgPrefix(record) + id;
      const value = await this.guard.use(() => this.db.get(key));
      if (value === undefined) throw messageNotFound(record.name, id);
      // A damaged record can be deleted too; its size is then not known.
      const bytes = dataBytes(openEnvelope(key, value, msgPrefix(record), record.name));
      const undo = counterUndo(record, -1, -bytes);
      record.messages--;
      record.bytes -= bytes;
      this.markDirty(record);
      await this.committer.commit([{ type: 'del', key }], undo);
      this.emitRemoved(record, [id]);
    });
  }

  async enforceRetention(now: number = Date.now()): Promise<number> {
    // Idempotency keys past their window go on the same schedule as old messages.
    const expired = this.keys.prune(now);
    if (expired.length > 0) await this.committer.commit(expired);
    let removed = 0;
    for (const record of this.queues.entries()) {
      if (record.retentionMs !== undefined) removed += await this.enforceRetentionFor(record, now);
    }
    return removed;
  }

  // ---- internals ---------------------------------------------------------

  private markDirty(record: QueueRecord): void {
    // A record deleted (or replaced by a re-created queue) while a trim, sweep
    // or message delete ran must not be written back: it would return after a
    // restart.
    if (this.queues.find(record.name) !== record) return;
    this.markDirtyName(record.name);
  }

  /**
   * Writes, with the next batch, whatever the catalogue holds under `name`
   * then: the record, or its removal. The name is fixed here, not read from
   * the record at write time, so a rename in between removes the old key
   * instead of writing the record back under it.
   */
  private markDirtyName(name: string): void {
    const key = queueKey(name);
    this.committer.markDirty(key, () => {
      const live = this.queues.find(name);
      return live ? { type: 'put', key, value: seal(key, JSON.stringify(live)) } : { type: 'del', key };
    });
  }

  private emitQueueEvent(event: QueueEvent): void {
    for (const listener of this.queueListeners) listener(event);
  }

  private enforceRetentionFor(record: QueueRecord, now: number): Promise<number> {
    const retention = record.retentionMs;
    if (retention === undefined) return Promise.resolve(0);
    return this.withLock(record, () => this.deleteRange(record, { lt: msgPrefix(record) + firstIdAt(now - retention) }));
  }

  private scheduleTrim(record: QueueRecord): void {
    if (this.trimming.has(record.qid) || this.closed) return;
    this.trimming.add(record.qid);
    this.track(
      this.withLock(record, async () => {
        this.trimming.delete(record.qid);
        const max = record.maxMessages;
        if (max === undefined || record.messages <= max || !this.queues.isCurrent(record)) return 0;
        return this.deleteRange(record, { lt: msgPrefix(record) + HIGH }, record.messages - max);
      }),
    );
  }

  /**
   * Deletes the oldest messages of a queue, up to a key bound and at most
   * `max` of them, in chunks; each chunk and the counters it changes are
   * one synced batch.
   */
  private async deleteRange(
    record: QueueRecord,
    bound: { lt?: string; lte?: string },
    max = Infinity,
  ): Promise<number> {
    let removed = 0;
    let from = msgPrefix(record);
    while (removed < max && this.queues.isCurrent(record)) {
      const limit = Math.min(CHUNK, max - removed);
      const ops: Op[] = [];
      const ids: string[] = [];
      let bytes = 0;
      await this.guard.use(async () => {
        for await (const [key, value] of this.db.iterator({ gt: from, ...bound, limit })) {
          ops.push({ type: 'del', key });
          ids.push(key.slice(msgPrefix(record).length));
          bytes += dataBytes(openEnvelope(key, value, msgPrefix(record), record.name));
          from = key;
        }
      });
      if (ops.length === 0) break;
      const undo = counterUndo(record, -ops.length, -bytes);
      record.messages -= ops.length;
      record.bytes -= bytes;
      this.markDirty(record);
      await this.committer.commit(ops, undo);
      this.emitRemoved(record, ids);
      removed += ops.length;
      if (ops.length < limit) break;
    }
    return removed;
  }

  private emitRemoved(record: QueueRecord, ids: string[]): void {
    if (!this.queues.isCurrent(record)) return;
    for (const consumer of this.consumers.get(record.qid) ?? []) consumer.removed(ids);
  }

  private async clearDeleted(qid: string): Promise<void> {
    const prefix = `m!${qid}!`;
    await this.guard.use(() => this.db.clear({ gt: prefix, lt: prefix + HIGH }));
    await this.guard.use(() => this.db.clear({ gt: keyPrefix(qid), lt: keyPrefix(qid) + KEY_HIGH }));
    await this.committer.commit([{ type: 'del', key: 'dq!' + qid }]);
  }

  /**
   * Looks at the data directory before LevelDB does: LevelDB with
   * createIfMissing creates a fresh database where CURRENT is missing and
   * then deletes the old tables as obsolete. Returns whether the directory
   * holds no database yet.
   */
  private async inspect(): Promise<boolean> {
    const names = await readdir(this.location);
    const data = names.filter((n) => /^(MANIFEST-\d+|\d+\.(log|ldb|sst))$/.test(n));
    if (!names.includes('CURRENT')) {
      if (data.length === 0) return true;
      throw new DiscueError(
        'STORAGE_DAMAGED',
        `the data directory ${this.location} holds database files (${data.slice(0, 4).join(', ')}${data.length > 4 ? ', ...' : ''}) but no CURRENT file, ` +
          'so LevelDB cannot tell which of them are live; discue will not create an empty database over them. ' +
          'Run `discue daemon repair` (it copies the directory aside first, then rebuilds the database from the files)',
      );
    }
    // A torn record at the end of the write-ahead log is dropped by LevelDB
    // without a word. After a power loss that is an unacknowledged write
    // (acknowledged ones are synced); otherwise the file was cut short.
    for (const name of data.filter((n) => n.endsWith('.log'))) {
      const torn = await tornLogTail(`${this.location}/${name}`);
      if (torn > 0) {
        const warning =
          `the write-ahead log ${name} in ${this.location} ended in a torn record (${torn} bytes), which LevelDB drops: ` +
          'after a power loss that is a write that was never acknowledged; if the machine did not crash, the file was cut short and recent messages may be lost';
        this.startWarnings.push(warning); // logged by the daemon with the others at start
      }
    }
    return false;
  }

  private reportDamaged(key: string): void {
    if (this.damaged.has(key) || this.damaged.size >= DAMAGED_KEEP) return;
    this.damaged.add(key);
    this.log?.error('damaged record skipped (checksum mismatch); it is never served', { key, data: this.location });
  }

  private withLock<T>(record: QueueRecord, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(record.qid) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(record.qid, settled);
    void settled.then(() => {
      if (this.locks.get(record.qid) === settled) this.locks.delete(record.qid);
    });
    return run;
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => undefined);
    this.background.add(tracked);
    void tracked.then(() => this.background.delete(tracked));
  }
}

function queueKey(name: string): string {
  return 'q!' + name;
}

function msgPrefix(record: QueueRecord): string {
  return `m!${record.qid}!`;
}

function messageNotFound(queue: string, id: string): DiscueError {
  return new DiscueError('MESSAGE_NOT_FOUND', `message ${id} not found in queue "${queue}"`);
}

/**
 * A stored message, if its record is intact and really is a message of this
 * queue (the checksum covers the key, which holds the queue's id), with the
 * queue's name as the catalogue has it now. Messages of formats 1 and 2
 * carry the name they were published under: it is not read.
 */
function openEnvelope(key: string, value: string, prefix: string, queue: string): Envelope | undefined {
  const stored = openRecord<Envelope>(key, value);
  if (stored === undefined || typeof stored.data !== 'string' || prefix + stored.id !== key) return undefined;
  const { id, name, data, publishedAt } = stored;
  return name === undefined ? { id, queue, data, publishedAt } : { id, queue, name, data, publishedAt };
}

function dataBytes(envelope: Envelope | undefined): number {
  return envelope === undefined ? 0 : Buffer.byteLength(envelope.data, 'utf8');
}

/**
 * Takes back one write's change to a queue's counters (made right after
 * this call) if the write fails. Deltas, not a snapshot, so the changes of
 * other writes queued meanwhile stay; lastId goes back only if it is still
 * this write's (undos run newest first).
 */
function counterUndo(record: QueueRecord, messages: number, bytes: number, newLastId?: string): () => void {
  const { lastId, lastPublishedAt } = record;
  return () => {
    record.messages -= messages;
    record.bytes -= bytes;
    if (newLastId === undefined || record.lastId !== newLastId) return;
    if (lastId === undefined) delete record.lastId;
    else record.lastId = lastId;
    if (lastPublishedAt === undefined) delete record.lastPublishedAt;
    else record.lastPublishedAt = lastPublishedAt;
  };
}

/** Names the cause LevelDB gave (classic-level hides it in `cause`) and the next step. */
function openError(location: string, err: unknown): DiscueError {
  const cause = errorCause(err);
  if (cause.code === 'LEVEL_LOCKED') {
    return new DiscueError('ALREADY_RUNNING', `another daemon holds the database at ${location}`, { cause: err });
  }
  if (cause.code === 'LEVEL_CORRUPTION') {
    return new DiscueError(
      'STORAGE_DAMAGED',
      `the database at ${location} is damaged: ${cause.message}. Run \`discue daemon repair\` (it copies the directory aside first, then salvages what it can)`,
      { cause: err },
    );
  }
  if (/No space left on device|Disk quota exceeded/i.test(cause.message)) {
    return new DiscueError('STORAGE_FULL', `cannot open the database at ${location}: ${cause.message}; free some space and start again`, {
      cause: err,
    });
  }
  return new DiscueError(
    'STORAGE_ERROR',
    `cannot open the database at ${location}: ${cause.message}. Check the directory's permissions and free space; if LevelDB reports damage, run \`discue daemon repair\``,
    { cause: err },
  );
}

function applyPatch<K extends 'schema' | 'retentionMs' | 'maxMessages'>(
  record: QueueRecord,
  key: K,
  value: QueueRecord[K] | null | undefined,
): void {
  if (value === null) delete record[key];
  else if (value !== undefined) record[key] = value;
}

function toInfo(record: QueueRecord): QueueInfo {
  const { qid: _qid, ...info } = record;
  return { ...info };
}

/**
 * A message as stored: JSON.stringify({id, name?, data, publishedAt}),
 * without the queue's name, which lives in the catalogue (a rename rewrites
 * no message). Written out by hand, as the hottest line of a publish: the id
 * and the time need no escaping, so only the user's strings go through
 * JSON.stringify, and no object is made to be thrown away.
 */
export function storedJson(id: string, name: string | undefined, data: string, publishedAt: string): string {
  const named = name === undefined ? '' : `,"name":${JSON.stringify(name)}`;
  return `{"id":"${id}"${named},"data":${JSON.stringify(data)},"publishedAt":"${publishedAt}"}`;
}
