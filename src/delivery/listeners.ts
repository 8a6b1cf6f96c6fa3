/**
 * The listener registry: adding, removing, pausing and finding listeners,
 * what `listener list/show` reports of them, and requeuing dead deliveries.
 * Stored listeners are the backend's (Deliveries); a stream without a name
 * lives here only, as long as its `listen` is connected.
 */
import { randomBytes } from 'node:crypto';
import { DiscueError } from '../protocol/errors.js';
import type { ListenerInfo } from '../protocol/wire.js';
import { nameMatcher } from '../protocol/choose.js';
import { timeOfId } from '../protocol/ids.js';
import type { DeliveryRecord, Envelope, ListOptions, ListenerRecord, QueueId, StartAt, Store } from '../backend/types.js';
import type { DeliveryEngine } from './engine.js';
import { maskHeaders, maskUrl } from '../protocol/redact.js';

/** Messages read per page while counting what a replay sends. */
const COUNT_PAGE = 1000;

export class ListenerRegistry {
  /** Streams without a name: not stored, gone when their `listen` disconnects. */
  readonly unnamed = new Map<string, ListenerRecord>();

  constructor(
    private readonly store: Store,
    private readonly engine: DeliveryEngine,
  ) {}

  async register(record: ListenerRecord, start: StartAt): Promise<void> {
    if (record.name !== undefined && this.byName(record.name)) {
      throw new DiscueError('LISTENER_EXISTS', `a listener named "${record.name}" already exists`);
    }
    await this.store.deliveries.saveListener(record, start);
    this.engine.startWorkers(record);
  }

  /**
   * Changes what a listener chooses (filters, rate limit, liveness URL): its
   * workers stop, the record is saved, and they start again where they were.
   */
  async update(record: ListenerRecord, patch: Partial<Pick<ListenerRecord, 'filters' | 'rate' | 'livenessUrl'>>): Promise<void> {
    if (this.unnamed.has(record.id)) throw new DiscueError('INVALID_ARGUMENT', 'a `listen` without a name cannot be updated: start it again with the options you want');
    await this.engine.stopWorkers(record.id);
    for (const key of ['filters', 'rate', 'livenessUrl'] as const) {
      if (!(key in patch)) continue;
      const value = patch[key];
      if (value === undefined || (Array.isArray(value) && value.length === 0)) delete record[key];
      else (record as Record<string, unknown>)[key] = value;
    }
    try {
      await this.store.deliveries.saveListener(record);
    } finally {
      this.engine.startWorkers(record);
    }
  }

  /**
   * Moves a stored listener to a point (a time, or a message id: from that
   * message on, and in its other queues from when it was stored) and
   * delivers again from there. Returns how many messages go out (those its
   * filters take); `dryRun` only counts. Its other listeners are untouched.
   */
  async replay(record: ListenerRecord, at: { sinceMs: number } | { messageId: string }, dryRun: boolean): Promise<{ messages: number; queues: QueueId[] }> {
    if (this.unnamed.has(record.id)) throw new DiscueError('INVALID_ARGUMENT', 'a `listen` without a name keeps no position to move: start it again with --from');
    const queues = (record.allQueues ? this.store.queueIds() : record.queues).filter((q) => this.store.hasQueue(q));
    const points = new Map<QueueId, { sinceMs: number } | { messageId: string }>();
    if ('messageId' in at) {
      const holder = await this.findMessage(queues, at.messageId);
      if (holder === undefined) throw new DiscueError('MESSAGE_NOT_FOUND', `none of the listener's queues holds message ${at.messageId}`);
      for (const q of queues) points.set(q, q === holder ? at : { sinceMs: timeOfId(at.messageId) });
    } else {
      for (const q of queues) points.set(q, at);
    }
    let messages = 0;
    for (const [q, point] of points) messages += await this.countFrom(q, point, record.filters);
    if (dryRun) return { messages, queues };
    await this.engine.stopWorkers(record.id);
    try {
      for (const [q, point] of points) await this.store.deliveries.movePosition(record.id, q, point);
    } finally {
      this.engine.startWorkers(record);
    }
    return { messages, queues };
  }

  private async findMessage(queues: QueueId[], id: string): Promise<QueueId | undefined> {
    for (const q of queues) {
      const found = await this.store.getMessage(q, id).then(
        () => true,
        (err: unknown) => (err instanceof DiscueError && err.code === 'MESSAGE_NOT_FOUND' ? false : Promise.reject(err)),
      );
      if (found) return q;
    }
    return undefined;
  }

  /**
   * Stored messages from a point on that the filters take, one page at a
   * time. From a message: it and what is stored after it, by the backend's
   * order; ids are not compared (on a cluster, two hosts' ids need not sort
   * in the order the stream stored them).
   */
  private async countFrom(queue: QueueId, point: { sinceMs: number } | { messageId: string }, filters: string[] | undefined): Promise<number> {
    const matches = nameMatcher(filters);
    const takes = (m: Envelope) => !matches || matches(m.name);
    let n = 0;
    let options: ListOptions;
    if ('messageId' in point) {
      if (takes(await this.store.getMessage(queue, point.messageId))) n++;
      options = { afterId: point.messageId, limit: COUNT_PAGE };
    } else {
      options = { sinceMs: point.sinceMs, limit: COUNT_PAGE };
    }
    for (;;) {
      const page = await this.store.readMessages(queue, options);
      for (const m of page.messages) if (takes(m)) n++;
      if (page.next === undefined || page.messages.length + page.damaged.length === 0) return n;
      options = { next: page.next, limit: COUNT_PAGE };
    }
  }

  async remove(record: ListenerRecord): Promise<void> {
    this.engine.stats.forget(`listener:${record.id}:`);
    await this.engine.stopWorkers(record.id);
    this.engine.streams.forget(record.id);
    await this.store.deliveries.removeListener(record.id);
  }

  async setState(record: ListenerRecord, state: ListenerRecord['state'], reason?: string): Promise<void> {
    record.state = state;
    if (reason === undefined) delete record.disabledReason;
    else record.disabledReason = reason;
    if (!this.unnamed.has(record.id)) await this.store.deliveries.saveListener(record);
    this.engine.wake(record.id);
    this.engine.waiters.check();
  }

  /** Finds a listener by id or name. */
  resolve(ref: string): ListenerRecord {
    const record = this.store.deliveries.listener(ref) ?? this.byName(ref) ?? this.unnamed.get(ref);
    if (!record) throw new DiscueError('LISTENER_NOT_FOUND', `no listener with id or name "${ref}" (see \`discue listener list\`)`);
    return record;
  }

  byName(name: string): ListenerRecord | undefined {
    return this.store.deliveries.byName(name) ?? [...this.unnamed.values()].find((l) => l.name === name);
  }

  /** Every listener (stored, and streams without a name), oldest first. */
  all(): ListenerRecord[] {
    return [...this.store.deliveries.listeners(), ...this.unnamed.values()];
  }

  list(queue?: string): ListenerRecord[] {
    return this.all()
      .filter((l) => queue === undefined || l.queues.includes(queue) || l.allQueues)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  info(record: ListenerRecord, withSecret = false): ListenerInfo {
    const { secret, ...rest } = record;
    const info: ListenerInfo = { ...rest };
    if (!withSecret) {
      if (info.url !== undefined) info.url = maskUrl(info.url);
      if (info.headers !== undefined) info.headers = maskHeaders(info.headers);
    }
    if (secret) {
      info.hasSecret = true;
      if (withSecret) info.secret = secret;
    }
    const now = Date.now();
    info.progress = this.engine.workersOf(record.id).map((w) => w.progress(now));
    if (record.kind === 'stream') info.connected = this.engine.streams.connected(record.id);
    info.stats = this.engine.listenerStats(record, now);
    return info;
  }

  /** Hands dead deliveries out again, each for a fresh round; returns how many. */
  async retry(filter: { listenerId?: string; messageId?: string; allDead?: boolean }): Promise<number> {
    let count = 0;
    const listeners = filter.listenerId ? [this.resolve(filter.listenerId)] : this.store.deliveries.listeners();
    for (const listener of listeners) {
      let dead: DeliveryRecord[];
      if (filter.messageId) {
        const record = await this.store.deliveries.get(listener.id, filter.messageId);
        if (!record || record.state !== 'dead') {
          throw new DiscueError('DELIVERY_NOT_FOUND', `no dead delivery ${listener.id}/${filter.messageId}`);
        }
        dead = [record];
      } else {
        dead = await this.store.deliveries.deadDeliveries(listener.id);
      }
      for (const record of dead) {
        const worker = this.engine.workersOf(listener.id).find((w) => w.queue === record.queue);
        if (worker && (await worker.consumer.requeue(record.messageId))) count++;
      }
    }
    return count;
  }
}

/** Every listener's id, stored or not, of every kind. */
export function newListenerId(): string {
  return `l_${randomBytes(6).toString('base64url').replace(/[-_]/g, 'x')}`;
}
