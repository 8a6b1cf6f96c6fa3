/**
 * The listener registry: adding, removing, pausing and finding listeners,
 * what `listener list/show` reports of them, and requeuing dead deliveries.
 * Stored listeners are the backend's (Deliveries); a stream without a name
 * lives here only, as long as its `listen` is connected.
 */
import { randomBytes } from 'node:crypto';
import { DiscueError } from '../protocol/errors.js';
import type { ListenerInfo } from '../protocol/wire.js';
import type { DeliveryRecord, ListenerRecord, StartAt, Store } from '../backend/types.js';
import type { DeliveryEngine } from './engine.js';
import { maskUrl } from './redact.js';

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
    if (info.url !== undefined && !withSecret) info.url = maskUrl(info.url);
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
