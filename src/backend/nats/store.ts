/**
 * The NATS JetStream backend: queues are streams, the catalogue (queues,
 * listeners, cursors) is a KV bucket, delivery records are two more (see
 * names.ts for every name).
 *
 * What the server does and discue does not: retention (max_age, max_msgs,
 * discard old), idempotency (Nats-Msg-Id within the stream's duplicate
 * window), replication. What discue keeps in memory: the catalogue, loaded
 * at open and kept current by a KV watch, so several daemons on several
 * hosts see the same queues and listeners.
 *
 * Positions: a message's stream sequence is its place in the queue. Pages
 * are asked for after a message id too (`messages list --after ID`, the
 * suite's paging): ids are resolved to sequences here (a cache of recent
 * ones, else a seek by the time the id carries).
 */
import { jetstreamManager, jetstream, DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager, MsgRequest, StoredMsg, StreamConfig, StreamInfo } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV, KvEntry } from '@nats-io/kv';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { MsgHdrs } from '@nats-io/transport-node';
import { DiscueError } from '../../protocol/errors.js';
import { IdGenerator, isMessageId, timeOfId } from '../../protocol/ids.js';
import type { Envelope, MessageInput, QueueInfo } from '../../protocol/wire.js';
import { Catalogue } from '../catalogue.js';
import type {
  AppendListener,
  AppendOutcome,
  DedupeOptions,
  Consumer,
  ConsumerOptions,
  ListOptions,
  ListenerRecord,
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
import { API_TRY_MS, Connection } from './connection.js';
import type { NatsSettings } from './connection.js';
import { NatsConsumer, consumerConfig } from './consumer.js';
import type { ConsumerHost } from './consumer.js';
import { NatsDeliveries } from './deliveries.js';
import { History } from './history.js';
import { HEADER, Names, dec, messageIdOf, publishedAtOf } from './names.js';
import { AckPublisher } from './publisher.js';
import { OwnWrites } from './own-writes.js';
import type { Headers } from './names.js';

/** What the catalogue keeps of a queue (KV `queue.<enc(name)>`). */
export interface QueueEntry {
  name: string;
  qid: string;
  createdAt: string;
  schema?: Record<string, unknown>;
  retentionMs?: number;
  maxMessages?: number;
}

/** Figures read from the stream, cached for the synchronous reads (listQueues, stats). */
interface Figures {
  messages: number;
  bytes: number;
}

/**
 * How far from the time in its id a message may have been stored: clocks
 * of different hosts differ, and a publish retried through an election
 * lands seconds later.
 */
const SEEK_BEFORE_MS = 60_000;
const SEEK_AFTER_MS = 120_000;
/** Gets in flight at once when reading a run of sequences. */
const READ_AHEAD = 64;
/** Sequences of recently seen message ids, per process (a bound, not a registry). */
const ID_CACHE = 50_000;
const NS_PER_MS = 1_000_000;
/** How long one publish attempt waits for the stream's ack (Connection.request retries it through an election). */
const PUBLISH_TIMEOUT_MS = 5_000;
/** A queue stream the catalogue does not name is removed once it is this old. */
const ORPHAN_AGE_MS = 10 * 60_000;

export interface NatsStoreOptions extends NatsSettings {
  /** The idempotency window (the streams' duplicate_window); the daemon's default is backend/index.ts's DEFAULT_DEDUPE. */
  dedupe: DedupeOptions;
  log?: StoreLog;
}

export class NatsStore implements Store {
  readonly supports = { retention: true, clustering: true, atomicSettle: false } as const;
  readonly names: Names;
  readonly replicas: number;
  private conn!: Connection;
  private jsm!: JetStreamManager;
  private js!: JetStreamClient;
  private publisher!: AckPublisher;
  private catalog!: KV;
  private deliveriesImpl!: NatsDeliveries;
  /** The catalogue in memory, by name and by id (the queue's creation id: its stream is named by it). */
  private readonly queues = new Catalogue<QueueEntry>();
  /** Catalogue writes of this process, in call order (renames change names while earlier writes are in flight). */
  private catalogWrites: Promise<unknown> = Promise.resolve();
  private readonly figures = new Map<string, Figures>();
  /** The last sequence of each queue (qid) this process saw: its own appends, and stream reads. */
  private readonly lastSeq = new Map<string, number>();
  /** Queue keys this process writes: their echoes from the watch are not news. */
  private readonly own = new OwnWrites();
  private readonly ids = new IdGenerator();
  private readonly idSeq = new RecentSeqs(ID_CACHE);
  private readonly appendListeners: AppendListener[] = [];
  /** Open consumers per queue (qid): removals made here reach them at once. */
  private readonly consumers = new Map<string, Set<NatsConsumer>>();
  private readonly queueListeners: QueueEventListener[] = [];
  /** Appends report to onAppend in the order they were made, whatever order their acks come back in. */
  private notified: Promise<void> = Promise.resolve();
  private watcher: { stop(): void } | undefined;
  private readonly dedupe: DedupeOptions;
  private readonly log: StoreLog | undefined;

  constructor(private readonly settings: NatsStoreOptions) {
    this.names = new Names(settings.namespace ?? 'discue');
    this.replicas = settings.replicas ?? 1;
    this.dedupe = settings.dedupe;
    this.log = settings.log;
  }

  get deliveries(): NatsDeliveries {
    return this.deliveriesImpl;
  }

  /** The server this daemon is connected to now. */
  get server(): string {
    return this.conn.server;
  }

  async open(): Promise<void> {
    this.conn = await Connection.open(this.settings);
    const { nc } = this.conn;
    this.jsm = await this.conn.request('reach JetStream', () => jetstreamManager(nc, { timeout: API_TRY_MS }));
    this.js = jetstream(nc);
    this.publisher = new AckPublisher(nc, PUBLISH_TIMEOUT_MS);
    const kvm = new Kvm(jetstream(nc, { timeout: API_TRY_MS }));
    const bucket = (name: string): Promise<KV> =>
      this.conn.request(`open the KV bucket ${name}`, () => kvm.create(name, { history: 1, replicas: this.replicas, storage: StorageType.File }));
    this.catalog = await bucket(this.names.catalogBucket);
    const records = await bucket(this.names.deliveriesBucket);
    const history = new History(this.conn, this.jsm, this.js, this.names);
    await history.open(this.replicas);
    this.deliveriesImpl = new NatsDeliveries(this.conn, this.names, this.catalog, records, history, {
      ensure: (record, start) => this.ensureConsumers(record, start),
      drop: (lid, queues) => this.dropConsumers(lid, queues),
      move: (record, queue, at) => this.moveConsumer(record, queue, at),
    }, this.jsm);
    await this.loadCatalog();
    await this.sweepOrphans();
  }

  /** Reads the catalogue, then follows its changes (made here or by another daemon). */
  private async loadCatalog(): Promise<void> {
    const status = await this.conn.request('read the catalogue', () => this.catalog.status());
    const last = status.streamInfo.state.last_seq;
    // Each read rides out an election like every other request (a daemon
    // started while a catalogue leader is being elected waits, not fails).
    const keys = await this.conn.request('read the catalogue', async () => {
      const found: string[] = [];
      for await (const key of await this.catalog.keys()) found.push(key);
      return found;
    });
    const entries: KvEntry[] = [];
    for (const key of keys) {
      const entry = await this.conn.request('read the catalogue', () => this.catalog.get(key));
      if (entry) entries.push(entry);
    }
    // A rename writes the new name, then removes the old: after a crash in
    // between, the newer of two entries of one queue is its name.
    const newest = new Map<string, KvEntry>();
    for (const entry of entries) {
      if (!entry.key.startsWith('queue.') || entry.operation !== 'PUT') continue;
      const { qid } = entry.json<QueueEntry>();
      const other = newest.get(qid);
      if (other === undefined || other.revision < entry.revision) newest.set(qid, entry);
    }
    for (const entry of entries) {
      if (entry.key.startsWith('queue.') && entry.operation === 'PUT' && newest.get(entry.json<QueueEntry>().qid) !== entry) {
        await this.conn.request('finish a rename', () => this.catalog.delete(entry.key));
        continue;
      }
      this.apply(entry, false);
    }
    const watch = await this.conn.request('follow the catalogue', () => this.catalog.watch({ resumeFromRevision: last + 1 }));
    this.watcher = watch;
    void (async () => {
      for await (const entry of watch) this.apply(entry, true);
    })().catch((err) => this.log?.warn('the catalogue watch stopped', { error: String(err) }));
    for (const q of this.queues.entries()) await this.refresh(q);
  }

  /**
   * Removes queue streams the catalogue does not name: left by a daemon that
   * died between making a queue's stream and its catalogue entry, or that
   * could not delete the stream of a queue it deleted. Only streams made
   * well before now (a queue id carries its creation time): a create in
   * progress on another host makes its entry within milliseconds.
   */
  private async sweepOrphans(now = Date.now()): Promise<void> {
    const known = new Set(this.queues.entries().map((q) => this.names.stream(q.qid)));
    const orphans: string[] = [];
    for await (const name of await this.conn.request('list streams', async () => this.jsm.streams.names())) {
      if (!name.startsWith(this.names.streamPrefix) || known.has(name)) continue;
      const qid = name.slice(this.names.streamPrefix.length);
      if (isMessageId(qid) && timeOfId(qid) < now - ORPHAN_AGE_MS) orphans.push(name);
    }
    for (const name of orphans) {
      await this.jsm.streams.delete(name).then(
        () => this.log?.warn('removed a queue stream that no queue names (left by an interrupted create or delete)', { stream: name }),
        () => undefined,
      );
    }
  }

  /** One catalogue change, from the initial read or the watch. */
  private apply(entry: KvEntry, live: boolean): void {
    const [kind, ...rest] = entry.key.split('.');
    if (kind === 'queue') {
      const name = dec(rest.join('.'));
      if (this.own.isEcho(entry)) return;
      const known = this.queues.find(name);
      if (entry.operation !== 'PUT') {
        // Gone under this name: deleted, or renamed (then the new name is already here).
        if (known === undefined) return;
        this.forget(known);
        if (live) this.emit({ type: 'deleted', queue: known.qid, name, removedListeners: [] });
        return;
      }
      const value = entry.json<QueueEntry>();
      const before = this.queues.findById(value.qid);
      if (before !== undefined && JSON.stringify(before) === JSON.stringify(value)) return;
      if (before !== undefined) this.queues.remove(before);
      if (known !== undefined && known.qid !== value.qid) this.forget(known);
      this.remember_(value);
      if (!live) return;
      // Changed elsewhere (this process's own writes are in the cache before their echo).
      if (before === undefined) this.emit({ type: 'created', queue: value.qid, name });
      else if (before.name !== name) this.emit({ type: 'renamed', queue: value.qid, name, previous: before.name });
      else this.emit({ type: 'updated', queue: value.qid, name });
      return;
    }
    this.deliveriesImpl?.apply(entry, live);
  }

  private remember_(entry: QueueEntry): void {
    this.queues.add(entry);
    if (!this.figures.has(entry.qid)) this.figures.set(entry.qid, { messages: 0, bytes: 0 });
  }

  private forget(entry: QueueEntry): void {
    this.queues.remove(entry);
  }

  private emit(event: QueueEvent): void {
    for (const l of this.queueListeners) l(event);
  }

  /** Runs a catalogue write after the ones this process started before it. */
  private write<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.catalogWrites.then(fn, fn);
    this.catalogWrites = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.watcher?.stop();
    await this.notified;
    this.publisher?.close();
    await this.conn?.close();
  }

  ready(what: string): Promise<void> {
    return this.conn.ready(what);
  }

  onAppend(listener: AppendListener): void {
    this.appendListeners.push(listener);
  }

  onQueueEvent(listener: QueueEventListener): void {
    this.queueListeners.push(listener);
  }

  stats(): StoreStats {
    let messages = 0;
    for (const q of this.queues.entries()) messages += this.figures.get(q.qid)?.messages ?? 0;
    const warnings: string[] = [];
    if (this.conn?.isConnected() === false) warnings.push(`not connected to the NATS servers (${this.conn.servers.join(', ')}): reconnecting`);
    else if (this.conn?.quorumLost()) warnings.push(`NATS: ${this.conn.noQuorum()}; commands fail with BACKEND_UNAVAILABLE until more are back`);
    const cluster = this.conn === undefined ? undefined : { servers: this.conn.servers, connected: this.conn.isConnected() ? this.conn.server : undefined, replicas: this.replicas };
    return cluster === undefined ? { queues: this.queues.size, messages, warnings } : { queues: this.queues.size, messages, warnings, cluster };
  }

  // ---- queues ------------------------------------------------------------

  /** From memory: counts as last read from the streams (getQueue reads them afresh). */
  listQueues(): QueueInfo[] {
    return this.queues.sorted().map((q) => this.info(q));
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

  /** From memory (the catalogue watch keeps it current): the publish path reads it every time. */
  queueConfig(id: QueueId): QueueConfig {
    return this.queues.config(id);
  }

  async getQueue(name: string): Promise<QueueInfo> {
    const q = this.queues.named(name);
    const state = await this.refresh(q);
    const info = this.info(q);
    if (state.messages > 0) {
      const first = await this.next(q, state.first_seq);
      const last = await this.conn.request('read the last message', () =>
        this.jsm.streams.getMessage(this.names.stream(q.qid), { last_by_subj: this.names.subject(q.qid) }),
      );
      const firstId = first ? messageIdOf(first.header) : undefined;
      const lastId = last ? messageIdOf(last.header) : undefined;
      if (firstId) info.firstId = firstId;
      if (lastId) {
        info.lastId = lastId;
        info.lastPublishedAt = publishedAtOf(lastId);
      }
    }
    return info;
  }

  async createQueue(config: QueueConfig): Promise<QueueInfo> {
    if (this.queues.has(config.name)) throw new DiscueError('QUEUE_EXISTS', `queue "${config.name}" already exists`);
    const entry: QueueEntry = { name: config.name, qid: this.ids.next(), createdAt: new Date().toISOString() };
    if (config.schema !== undefined) entry.schema = config.schema;
    if (config.retentionMs !== undefined) entry.retentionMs = config.retentionMs;
    if (config.maxMessages !== undefined) entry.maxMessages = config.maxMessages;
    const key = this.names.queueKey(config.name);
    // The stream first, under a fresh id no one else uses; then the
    // catalogue entry, whose create() is the one place two daemons creating
    // the same queue at once find out which of them won.
    // The name is taken here at once (a rename or create started after this one sees it).
    this.remember_(entry);
    this.own.hold(key);
    try {
      await this.conn.request(`create the stream of queue "${config.name}"`, () => this.jsm.streams.add(this.streamConfig(entry)));
      await this.write(async () => {
        this.own.wrote(key, await this.conn.request(`create queue "${config.name}"`, () => this.catalog.create(key, JSON.stringify(entry))));
      });
    } catch (err) {
      this.forget(entry);
      await this.jsm.streams.delete(this.names.stream(entry.qid)).catch(() => undefined);
      if (isWrongLastSequence(err)) throw new DiscueError('QUEUE_EXISTS', `queue "${config.name}" already exists`);
      throw err;
    } finally {
      this.own.release(key);
    }
    this.emit({ type: 'created', queue: entry.qid, name: entry.name });
    return this.info(entry);
  }

  async updateQueue(name: string, patch: QueuePatch): Promise<QueueInfo> {
    const q = this.queues.named(name);
    const next: QueueEntry = { ...q };
    applyPatch(next, 'schema', patch.schema);
    applyPatch(next, 'retentionMs', patch.retentionMs);
    applyPatch(next, 'maxMessages', patch.maxMessages);
    // The stream keeps the replicas it was made with: a daemon with another store.replicas changes limits only.
    const { num_replicas: _replicas, ...limits } = this.streamConfig(next);
    await this.conn.request(`update the stream of queue "${name}"`, () => this.jsm.streams.update(this.names.stream(q.qid), limits));
    const key = this.names.queueKey(name);
    this.own.hold(key);
    try {
      await this.write(async () => {
        this.own.wrote(key, await this.conn.request(`update queue "${name}"`, () => this.catalog.put(key, JSON.stringify(next))));
      });
    } finally {
      this.own.release(key);
    }
    if (this.queues.isCurrent(q)) {
      this.forget(q);
      this.remember_(next);
    }
    this.emit({ type: 'updated', queue: next.qid, name: next.name });
    return this.info(next);
  }

  /**
   * A new name for the queue's catalogue entry; the stream, named by the
   * queue's id, stays. The new name's entry is written before the old one is
   * removed (a crash in between leaves two, and open keeps the newer). The
   * catalogue in memory changes at once, so a rename or create started while
   * this one is written sees it.
   */
  async renameQueue(from: string, to: string): Promise<QueueInfo> {
    const q = this.queues.named(from);
    if (this.queues.has(to)) throw new DiscueError('QUEUE_EXISTS', `queue "${to}" already exists`);
    const renamed: QueueEntry = { ...q, name: to };
    this.forget(q);
    this.remember_(renamed);
    const [fromKey, toKey] = [this.names.queueKey(from), this.names.queueKey(to)];
    this.own.hold(toKey, fromKey);
    try {
      await this.write(async () => {
        this.own.wrote(toKey, await this.conn.request(`rename queue "${from}"`, () => this.catalog.create(toKey, JSON.stringify(renamed))));
        await this.conn.request(`rename queue "${from}"`, () => this.catalog.delete(fromKey));
      });
    } catch (err) {
      if (this.queues.isCurrent(renamed)) {
        this.forget(renamed);
        this.remember_(q);
      }
      if (isWrongLastSequence(err)) throw new DiscueError('QUEUE_EXISTS', `queue "${to}" already exists`);
      throw err;
    } finally {
      this.own.release(toKey, fromKey);
    }
    this.emit({ type: 'renamed', queue: q.qid, name: to, previous: from });
    return this.info(this.queues.findById(q.qid) ?? renamed);
  }

  async deleteQueue(name: string): Promise<number> {
    const q = this.queues.named(name);
    const state = await this.refresh(q);
    this.forget(q);
    try {
      await this.write(() => this.conn.request(`delete queue "${name}"`, () => this.catalog.delete(this.names.queueKey(name))));
    } catch (err) {
      if (!this.queues.has(name)) this.remember_(q);
      throw err;
    }
    const removed = await this.deliveriesImpl.forgetQueue(q.qid);
    await this.conn.request(`delete the stream of queue "${name}"`, () => this.jsm.streams.delete(this.names.stream(q.qid))).catch((err) => {
      // The catalogue no longer names it: an orphan stream holds data no one reads; say so.
      this.log?.warn('could not delete the stream of a deleted queue', { queue: name, stream: this.names.stream(q.qid), error: String(err) });
    });
    this.figures.delete(q.qid);
    this.emit({ type: 'deleted', queue: q.qid, name, removedListeners: removed });
    return state.messages;
  }

  async purgeQueue(name: string): Promise<number> {
    const q = this.queues.named(name);
    const response = await this.conn.request(`purge queue "${name}"`, () => this.jsm.streams.purge(this.names.stream(q.qid)));
    const state = await this.refresh(q);
    for (const consumer of this.consumers.get(q.qid) ?? []) consumer.removedThrough(state.first_seq - 1);
    return response.purged;
  }

  // ---- messages ----------------------------------------------------------

  async append(queue: QueueId, messages: MessageInput[]): Promise<Envelope[]> {
    return (await this.publish(queue, messages)).stored;
  }

  async appendOnce(queue: QueueId, messages: MessageInput[]): Promise<AppendOutcome> {
    return this.publish(queue, messages);
  }

  /** Exported messages under their own ids (Nats-Msg-Id: an import run twice within the duplicate window stores them once). */
  async importMessages(queue: QueueId, messages: Envelope[]): Promise<void> {
    if (messages.length > 0) await this.publish(queue, messages, messages);
  }

  /**
   * Sends every message at once, in order (one connection keeps the order
   * on the wire, and the stream stores them in it), then waits for the
   * acknowledgements. A keyed message's Nats-Msg-Id is its key, so the
   * server's duplicate window answers a repeat with the first one's sequence.
   */
  private async publish(queue: QueueId, inputs: MessageInput[], given?: Envelope[]): Promise<AppendOutcome> {
    const q = this.queues.withId(queue);
    const subject = this.names.subject(q.qid);
    const what = `publish to queue "${q.name}"`;
    const envelopes = inputs.map((input, i): Envelope => {
      const id = given === undefined ? this.ids.next() : given[i]!.id;
      const publishedAt = publishedAtOf(id);
      // Envelopes carry the queue's name as the catalogue has it now.
      return input.name === undefined ? { id, queue: q.name, data: input.data, publishedAt } : { id, queue: q.name, name: input.name, data: input.data, publishedAt };
    });
    // Messages with the same key in one batch: only the first is sent; the
    // rest wait for its answer (sending both would race for the window).
    const firstOfKey = new Map<string, number>();
    const acks = inputs.map((input, i) => {
      if (input.key !== undefined) {
        const first = firstOfKey.get(input.key);
        if (first !== undefined) return undefined;
        firstOfKey.set(input.key, i);
      }
      const envelope = envelopes[i]!;
      let h: MsgHdrs | undefined;
      if (input.key !== undefined || envelope.name !== undefined) {
        h = natsHeaders();
        if (input.key !== undefined) h.set(HEADER.id, envelope.id);
        if (envelope.name !== undefined) h.set(HEADER.name, envelope.name);
      }
      const msgID = input.key === undefined ? envelope.id : `key:${input.key}`;
      return this.conn.request(what, () => this.publisher.publish(subject, envelope.data, msgID, h));
    });
    const previous = this.notified;
    let done!: () => void;
    this.notified = new Promise((resolve) => (done = resolve));
    try {
      const settled = await Promise.all(acks);
      const ids: string[] = [];
      const stored: Envelope[] = [];
      const duplicates: number[] = [];
      let through = 0;
      for (let i = 0; i < inputs.length; i++) {
        const key = inputs[i]!.key;
        const first = key === undefined ? i : firstOfKey.get(key)!;
        const ack = settled[first]!;
        through = Math.max(through, ack.seq);
        const envelope = envelopes[i]!;
        let id: string;
        if (first !== i) id = ids[first]!;
        else if (!ack.duplicate || key === undefined) id = envelope.id;
        // A duplicate of a keyed message: the first message with the key,
        // unless it is this very message (a retry whose first try was stored).
        else id = await this.idAt(q, ack.seq, key);
        ids.push(id);
        if (id === envelope.id) {
          stored.push(envelope);
          this.remember(id, ack.seq);
        } else duplicates.push(i);
      }
      this.seen(q, through);
      const figures = this.figures.get(q.qid);
      if (figures) {
        figures.messages += stored.length;
        for (const m of stored) figures.bytes += Buffer.byteLength(m.data, 'utf8');
      }
      await previous;
      if (stored.length > 0) for (const l of this.appendListeners) l(queue, stored);
      return { ids, through: String(through), stored, duplicates, publishedAt: publishedAtOf(ids[0]!) };
    } finally {
      await previous;
      done();
    }
  }

  /** The id of the message stored at `seq` (a duplicate's first message). */
  private async idAt(q: QueueEntry, seq: number, key: string): Promise<string> {
    const m = await this.get(q, seq);
    const id = messageIdOf(m?.header);
    if (!id) throw new DiscueError('MESSAGE_NOT_FOUND', `the first message with key "${key}" in queue "${q.name}" is gone`);
    this.remember(id, seq);
    return id;
  }

  async listMessages(queue: QueueId, options: ListOptions): Promise<Envelope[]> {
    return (await this.readMessages(queue, options)).messages;
  }

  async readMessages(queue: QueueId, options: ListOptions): Promise<MessagePage> {
    const q = this.queues.withId(queue);
    const state = await this.refresh(q);
    let from = state.first_seq;
    if (options.next !== undefined) {
      // The page before's `next` (its last sequence read) replaces afterId and sinceMs.
      from = Math.max(from, (await this.after(q, state, options.next)) + 1);
    } else {
      if (options.afterId !== undefined) from = Math.max(from, (await this.after(q, state, options.afterId)) + 1);
      if (options.sinceMs !== undefined) from = Math.max(from, await this.seqAtTime(q, state, options.sinceMs));
    }
    const page: MessagePage = { messages: [], damaged: [] };
    let lastRead = 0;
    await this.scan(q, from, state.last_seq, (m) => {
      lastRead = m.seq;
      const envelope = this.envelope(q, m);
      if (envelope === undefined) {
        page.damaged.push(String(m.seq));
        return true;
      }
      page.messages.push(envelope);
      return page.messages.length < options.limit;
    });
    if (lastRead > 0) page.next = String(lastRead);
    return page;
  }

  async countMessages(queue: QueueId, options: { afterId?: Position }): Promise<{ count: number; lastId: Position | undefined }> {
    const q = this.queues.withId(queue);
    const state = await this.refresh(q);
    let after = state.first_seq - 1;
    if (options.afterId !== undefined) after = Math.max(after, await this.after(q, state, options.afterId));
    if (after >= state.last_seq || state.messages === 0) return { count: 0, lastId: undefined };
    let count = state.last_seq - after;
    if (state.num_deleted > 0) {
      // Deleted sequences in between: the server counts what a consumer starting there would get.
      const info = await this.conn.request('count messages', () =>
        this.jsm.consumers.add(this.names.stream(q.qid), {
          ack_policy: 'none',
          deliver_policy: 'by_start_sequence',
          opt_start_seq: after + 1,
          inactive_threshold: 5_000 * NS_PER_MS,
          mem_storage: true,
        } as never),
      );
      count = info.num_pending;
      await this.jsm.consumers.delete(this.names.stream(q.qid), info.name).catch(() => undefined);
    }
    const last = await this.get(q, state.last_seq);
    // Named by message id, as the pages name their messages: a caller may page on from it.
    return { count, lastId: count === 0 ? undefined : messageIdOf(last?.header) };
  }

  async getMessage(queue: QueueId, id: string): Promise<Envelope> {
    const q = this.queues.withId(queue);
    const seq = await this.seqOf(q, id);
    const m = seq === undefined ? null : await this.get(q, seq);
    const envelope = m ? this.envelope(q, m) : undefined;
    if (envelope === undefined || envelope.id !== id) throw messageNotFound(queue, id);
    return envelope;
  }

  async deleteMessage(queue: QueueId, id: string): Promise<void> {
    const q = this.queues.withId(queue);
    const seq = await this.seqOf(q, id);
    if (seq === undefined) throw messageNotFound(queue, id);
    const m = await this.get(q, seq);
    const ok = await this.conn.request(`delete a message of queue "${queue}"`, () => this.jsm.streams.deleteMessage(this.names.stream(q.qid), seq, false)).catch((err) => {
      if (isNoMessage(err)) return false;
      throw err;
    });
    if (!ok) throw messageNotFound(queue, id);
    this.idSeq.delete(id);
    const figures = this.figures.get(q.qid);
    if (figures) {
      figures.messages = Math.max(0, figures.messages - 1);
      figures.bytes = Math.max(0, figures.bytes - (m?.data.length ?? 0));
    }
    for (const consumer of this.consumers.get(q.qid) ?? []) consumer.removed(seq, id);
  }

  /**
   * The server removes old messages by itself (max_age); this sweep is for
   * a caller that asks for one at a given time (removes what would be past
   * the age limit then, and reports the ids).
   */
  async enforceRetention(now: number = Date.now()): Promise<number> {
    let removed = 0;
    for (const q of this.queues.entries()) {
      if (q.retentionMs === undefined) continue;
      const state = await this.refresh(q);
      if (state.messages === 0) continue;
      const keep = await this.seqAtTime(q, state, now - q.retentionMs);
      if (keep <= state.first_seq) continue;
      const ids: string[] = [];
      await this.scan(q, state.first_seq, keep - 1, (m) => {
        const id = messageIdOf(m.header);
        if (id) ids.push(id);
        return true;
      });
      const response = await this.conn.request(`trim queue "${q.name}"`, () => this.jsm.streams.purge(this.names.stream(q.qid), { seq: keep }));
      removed += response.purged;
      for (const id of ids) this.idSeq.delete(id);
      await this.refresh(q);
      for (const consumer of this.consumers.get(q.qid) ?? []) consumer.removedThrough(keep - 1);
    }
    return removed;
  }

  // ---- consumers ---------------------------------------------------------

  consumer(listener: ListenerRecord, queue: QueueId, options: ConsumerOptions): Consumer {
    const q = this.queues.withId(queue);
    const host: ConsumerHost = {
      conn: this.conn,
      jsm: this.jsm,
      js: this.js,
      deliveries: this.deliveriesImpl,
      stream: this.names.stream(q.qid),
      consumerName: this.names.consumer(listener.id),
      envelope: (headers, data) => envelopeOf(q.name, headers, new TextDecoder().decode(data)),
      read: async (seq) => {
        const m = await this.get(q, seq);
        return m ? { envelope: this.envelope(q, m), time: m.time.getTime() } : undefined;
      },
      firstAfter: async (seq) => {
        const m = await this.next(q, seq + 1);
        return m ? { time: m.time.getTime() } : undefined;
      },
      lastSeq: () => this.lastSeq.get(q.qid) ?? 0,
      knownSeq: (id) => this.idSeq.get(id),
    };
    let open = this.consumers.get(q.qid);
    if (open === undefined) this.consumers.set(q.qid, (open = new Set()));
    const consumer = new NatsConsumer(host, listener, queue, options, () => open.delete(consumer));
    open.add(consumer);
    return consumer;
  }

  /**
   * A listener's durable consumer on each of its queues: made at `start`
   * when new (so `end` is the end now), its limits updated when it exists
   * (concurrency and timeout may have changed).
   */
  private async ensureConsumers(record: ListenerRecord, start: StartAt): Promise<void> {
    const name = this.names.consumer(record.id);
    for (const queue of record.queues) {
      const q = this.queues.findById(queue);
      if (q === undefined) continue;
      const stream = this.names.stream(q.qid);
      const config = consumerConfig(record, await this.startIn(q, start), name);
      const exists = await this.conn.request('find a consumer', () => this.jsm.consumers.info(stream, name)).catch((err) => {
        if (apiCode(err) === 10014) return undefined;
        throw err;
      });
      if (exists === undefined) await this.conn.request(`make the consumer of listener ${record.id}`, () => this.jsm.consumers.add(stream, config));
      else {
        const { ack_wait, max_ack_pending } = config;
        await this.conn.request(`update the consumer of listener ${record.id}`, () => this.jsm.consumers.update(stream, name, { ack_wait, max_ack_pending }));
      }
    }
  }

  /** A listener's consumer of one queue made again at a new start (replay); the messages after it. */
  private async moveConsumer(record: ListenerRecord, queue: QueueId, at: { sinceMs: number } | { messageId: string }): Promise<{ pending: number; after: number }> {
    const q = this.queues.withId(queue);
    const stream = this.names.stream(q.qid);
    const name = this.names.consumer(record.id);
    let start: StartAt | { afterSeq: number };
    if ('sinceMs' in at) start = { sinceMs: at.sinceMs };
    else {
      const seq = await this.seqOf(q, at.messageId);
      if (seq === undefined) throw messageNotFound(q.name, at.messageId);
      start = { afterSeq: seq - 1 };
    }
    await this.conn.request(`replay listener ${record.id}`, () => this.jsm.consumers.delete(stream, name)).catch((err) => {
      if (apiCode(err) !== 10014) throw err;
    });
    const info = await this.conn.request(`replay listener ${record.id}`, () => this.jsm.consumers.add(stream, consumerConfig(record, start, name)));
    // A new consumer's ack floor is just before its first message, wherever the server put the start (a time too).
    return { pending: info.num_pending, after: 'afterSeq' in start ? start.afterSeq : info.ack_floor.stream_seq };
  }

  /** A start after a message id (an import's listener position) as a stream sequence of this queue. */
  private async startIn(q: QueueEntry, start: StartAt): Promise<StartAt | { afterSeq: number }> {
    if (typeof start !== 'object' || !('afterIds' in start)) return start;
    const id = start.afterIds[q.qid];
    if (id === undefined) return 'end';
    const state = await this.refresh(q);
    return { afterSeq: await this.after(q, state, id) };
  }

  private async dropConsumers(lid: string, queues: string[]): Promise<void> {
    for (const queue of queues) {
      const q = this.queues.findById(queue);
      if (q === undefined) continue;
      await this.conn.request(`remove the consumer of listener ${lid}`, () => this.jsm.consumers.delete(this.names.stream(q.qid), this.names.consumer(lid))).catch((err) => {
        if (apiCode(err) !== 10014) throw err;
      });
    }
  }

  // ---- internals ---------------------------------------------------------

  private info(q: QueueEntry): QueueInfo {
    const { qid: _qid, ...rest } = q;
    const figures = this.figures.get(q.qid) ?? { messages: 0, bytes: 0 };
    return { ...rest, messages: figures.messages, bytes: figures.bytes };
  }

  private streamConfig(q: QueueEntry): Partial<StreamConfig> & { name: string } {
    const maxAge = q.retentionMs === undefined ? 0 : q.retentionMs * NS_PER_MS;
    // The server refuses a duplicate window longer than the age limit.
    const window = Math.min(this.dedupe.windowMs, q.retentionMs ?? Infinity);
    return {
      name: this.names.stream(q.qid),
      subjects: [this.names.subject(q.qid)],
      storage: StorageType.File,
      // Limits, not interest or work queue: `--from all` and `messages list` need the backlog after acks.
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: this.replicas,
      max_age: maxAge,
      max_msgs: q.maxMessages ?? -1,
      duplicate_window: window * NS_PER_MS,
      allow_direct: true,
    };
  }

  /** The stream's state now, and the cached figures updated from it. */
  private async refresh(q: QueueEntry): Promise<StreamInfo['state']> {
    const stream = this.names.stream(q.qid);
    const info = await this.conn.request(`read queue "${q.name}"`, () => this.jsm.streams.info(stream)).catch((err) => {
      if (isStreamNotFound(err)) {
        throw new DiscueError('STORAGE_DAMAGED', `queue "${q.name}" is in the catalogue but its stream ${stream} is missing on the NATS servers`, { cause: err });
      }
      throw err;
    });
    this.figures.set(q.qid, { messages: info.state.messages, bytes: info.state.bytes });
    this.seen(q, info.state.last_seq);
    return info.state;
  }

  private get(q: QueueEntry, seq: number): Promise<StoredMsg | null> {
    return this.conn.request(`read a message of queue "${q.name}"`, () => this.jsm.streams.getMessage(this.names.stream(q.qid), { seq })).catch((err) => {
      if (isNoMessage(err)) return null;
      throw err;
    });
  }

  /**
   * The first message at or after `seq`, or null past the end. The stream
   * API (not the direct one: that may answer from a replica that is behind)
   * takes next_by_subj on 2.9 too; the client's type leaves it out.
   */
  private next(q: QueueEntry, seq: number): Promise<StoredMsg | null> {
    const query = { seq, next_by_subj: this.names.subject(q.qid) } as unknown as MsgRequest;
    return this.conn
      .request(`read queue "${q.name}"`, () => this.jsm.streams.getMessage(this.names.stream(q.qid), query))
      .catch((err) => {
        if (isNoMessage(err)) return null;
        throw err;
      });
  }

  /**
   * Visits the messages from `from` through `to` in order until `visit`
   * says stop. Gets run READ_AHEAD at a time; a deleted sequence is skipped.
   */
  private async scan(q: QueueEntry, from: number, to: number, visit: (m: StoredMsg) => boolean): Promise<void> {
    // Sequences start at 1 (an empty stream says first_seq 0).
    for (let start = Math.max(1, from); start <= to; start += READ_AHEAD) {
      const end = Math.min(to, start + READ_AHEAD - 1);
      const batch = await Promise.all(Array.from({ length: end - start + 1 }, (_, i) => this.get(q, start + i)));
      for (const m of batch) {
        if (m === null) continue;
        const id = messageIdOf(m.header);
        if (id) this.remember(id, m.seq);
        if (!visit(m)) return;
      }
    }
  }

  /** The first sequence stored at or after `ms` (server time), or last_seq + 1. */
  private async seqAtTime(q: QueueEntry, state: StreamInfo['state'], ms: number): Promise<number> {
    let lo = state.first_seq;
    let hi = state.last_seq + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await this.next(q, mid);
      if (m === null || m.time.getTime() >= ms) hi = mid;
      else lo = m.seq + 1;
    }
    return lo;
  }

  /**
   * The sequence a page or count starts after: a position handed back (a
   * stream sequence), or a message id (pages name their messages by id).
   * An id no longer stored stands for where it was: after every message
   * stored before the time it carries.
   */
  private async after(q: QueueEntry, state: StreamInfo['state'], position: Position): Promise<number> {
    if (/^\d+$/.test(position)) return Number(position);
    if (!isMessageId(position)) throw new DiscueError('INVALID_ARGUMENT', `invalid position ${JSON.stringify(position)}`);
    const seq = await this.seqOf(q, position);
    return seq ?? (await this.seqAtTime(q, state, timeOfId(position))) - 1;
  }

  /** Where a message id is in its queue: remembered, or sought from the time its id carries. */
  private async seqOf(q: QueueEntry, id: string): Promise<number | undefined> {
    const known = this.idSeq.get(id);
    if (known !== undefined) return known;
    const state = await this.refresh(q);
    if (state.messages === 0) return undefined;
    const at = timeOfId(id);
    let found: number | undefined;
    const from = await this.seqAtTime(q, state, at - SEEK_BEFORE_MS);
    await this.scan(q, from, state.last_seq, (m) => {
      if (messageIdOf(m.header) === id) found = m.seq;
      return found === undefined && m.time.getTime() <= at + SEEK_AFTER_MS;
    });
    return found;
  }

  private seen(q: QueueEntry, seq: number): void {
    if (seq > (this.lastSeq.get(q.qid) ?? 0)) this.lastSeq.set(q.qid, seq);
  }

  private remember(id: string, seq: number): void {
    this.idSeq.set(id, seq);
  }

  private envelope(q: QueueEntry, m: StoredMsg): Envelope | undefined {
    return envelopeOf(q.name, m.header, m.string());
  }
}

/**
 * Sequences of recently seen message ids, at most about `bound`: two
 * generations of maps, the older dropped whole when the newer fills.
 * Not one map trimmed from the front: deleted entries stay as tombstones
 * until V8 rehashes, so finding the oldest key walks past them and each
 * publish paid for it (4% of the daemon's CPU at 256 in flight, profiled).
 */
class RecentSeqs {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  constructor(private readonly bound: number) {}

  get(id: string): number | undefined {
    return this.current.get(id) ?? this.previous.get(id);
  }

  set(id: string, seq: number): void {
    if (this.current.size >= this.bound / 2) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(id, seq);
  }

  delete(id: string): void {
    this.current.delete(id);
    this.previous.delete(id);
  }
}

/** A stored message as discue's envelope; undefined when its headers are missing (not written by discue). */
function envelopeOf(queue: string, headers: Headers | undefined, data: string): Envelope | undefined {
  const id = messageIdOf(headers);
  if (id === undefined) return undefined;
  const name = headers?.get(HEADER.name);
  const publishedAt = publishedAtOf(id);
  return name ? { id, queue, name, data, publishedAt } : { id, queue, data, publishedAt };
}

function applyPatch<K extends 'schema' | 'retentionMs' | 'maxMessages'>(entry: QueueEntry, key: K, value: QueueEntry[K] | null | undefined): void {
  if (value === null) delete entry[key];
  else if (value !== undefined) entry[key] = value;
}

function messageNotFound(queue: string, id: string): DiscueError {
  return new DiscueError('MESSAGE_NOT_FOUND', `message ${id} not found in queue "${queue}"`);
}

function apiCode(err: unknown): number | undefined {
  return (err as { code?: unknown; api_error?: { err_code?: number } })?.api_error?.err_code ?? (typeof (err as { code?: unknown })?.code === 'number' ? ((err as { code: number }).code) : undefined);
}

/** KV create() of a key that exists. */
function isWrongLastSequence(err: unknown): boolean {
  return apiCode(err) === 10071 || /wrong last sequence/i.test(String((err as Error)?.message));
}

function isNoMessage(err: unknown): boolean {
  return apiCode(err) === 10037 || /no message found/i.test(String((err as Error)?.message));
}

function isStreamNotFound(err: unknown): boolean {
  return apiCode(err) === 10059 || /stream not found/i.test(String((err as Error)?.message));
}
