/**
 * The backend conformance suite: what every storage backend must do, written
 * against the contract in src/backend/types.ts alone (as abstract-level runs
 * one suite against each implementation). A runner per backend (level.test.ts;
 * later one for NATS JetStream) hands in a harness and calls backendSuite().
 *
 * Positions are opaque here: the suite never compares or builds one, it only
 * hands back what the backend gave it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Attempt, Consumer, Delivery, Envelope, ListenerRecord, Position, QueueConfig, QueueId, Store } from '../../src/backend/types.js';
import { waitFor } from '../helpers/sandbox.js';

export interface BackendHarness {
  /** A fresh, empty place to keep a backend (a directory, a stream prefix). */
  place(): Promise<string>;
  /** A backend at that place, not opened yet. Opening the same place again must find everything kept. */
  make(place: string): Store;
  /** Removes the place and everything in it. */
  remove(place: string): Promise<void>;
}

function inputs(prefix: string, n: number): { data: string }[] {
  return Array.from({ length: n }, (_, i) => ({ data: `${prefix}${i}` }));
}

function listener(id: string, queues: string[], extra: Partial<ListenerRecord> = {}): ListenerRecord {
  return {
    id,
    kind: 'http',
    queues,
    url: 'http://127.0.0.1:9/hook',
    timeoutMs: 1000,
    maxAttempts: 3,
    retryDelayMs: 100,
    concurrency: 1,
    state: 'active',
    createdAt: new Date().toISOString(),
    ...extra,
  };
}

function ok(attempt: number): Attempt {
  return { attempt, at: new Date(0).toISOString(), durationMs: 5, ok: true, status: 200 };
}

function failed(attempt: number): Attempt {
  return { attempt, at: new Date(0).toISOString(), durationMs: 5, ok: false, status: 500, error: 'HTTP 500' };
}

/** The next delivery, which must come within the time (a consumer that hands out nothing fails the test, not hangs it). */
async function take(consumer: Consumer, timeoutMs = 20_000): Promise<Delivery> {
  const delivery = await consumer.next(AbortSignal.timeout(timeoutMs));
  if (delivery === undefined) throw new Error(`no delivery within ${timeoutMs} ms`);
  return delivery;
}

const data = (messages: { data: string }[]): string[] => messages.map((m) => m.data);

export function backendSuite(name: string, harness: BackendHarness): void {
  describe(`backend conformance: ${name}`, () => {
    let place: string;
    let store: Store;
    let open: Store[];
    let consumers: Consumer[];

    /** Opens (again) the backend at this test's place. */
    async function reopen(): Promise<Store> {
      if (open.includes(store)) {
        for (const c of consumers.splice(0)) await c.close();
        await store.close();
        open = open.filter((s) => s !== store);
      }
      store = harness.make(place);
      await store.open();
      open.push(store);
      return store;
    }

    /** Creates a queue; its id (what everything below the catalogue takes). */
    async function create(name: string, config: Omit<QueueConfig, 'name'> = {}): Promise<QueueId> {
      await store.createQueue({ name, ...config });
      return store.queueId(name);
    }

    /** A durable consumer of a stored listener, closed after the test. */
    function consume(listenerId: string, queue: QueueId, maxInFlight = 1): Consumer {
      const record = store.deliveries.listener(listenerId) ?? listener(listenerId, [queue]);
      const consumer = store.consumer(record, queue, { durable: true, maxInFlight });
      consumers.push(consumer);
      return consumer;
    }

    /** Every message of a queue, read page by page from the start. */
    async function all(queue: QueueId): Promise<Envelope[]> {
      const out: Envelope[] = [];
      let after: Position | undefined;
      for (;;) {
        const page = await store.listMessages(queue, { afterId: after, limit: 4 });
        if (page.length === 0) return out;
        out.push(...page);
        after = page[page.length - 1]!.id;
      }
    }

    beforeEach(async () => {
      place = await harness.place();
      open = [];
      consumers = [];
      await reopen();
    });
    afterEach(async () => {
      for (const c of consumers) await c.close();
      for (const s of open) await s.close();
      await harness.remove(place);
    });

    describe('queues', () => {
      it('creates a queue with its settings, lists it, and refuses a second one of the same name', async () => {
        const events: unknown[] = [];
        store.onQueueEvent((event) => events.push(event));
        const info = await store.createQueue({ name: 'orders', retentionMs: 60_000, maxMessages: 10, schema: { type: 'object' } });
        expect(info).toMatchObject({ name: 'orders', retentionMs: 60_000, maxMessages: 10, messages: 0, bytes: 0 });
        expect(Number.isNaN(Date.parse(info.createdAt))).toBe(false);
        await store.createQueue({ name: 'audit' });
        expect(store.listQueues().map((q) => q.name).sort()).toEqual(['audit', 'orders']);
        const orders = store.queueId('orders');
        const audit = store.queueId('audit');
        expect(orders).not.toBe(audit);
        expect(store.queueIds().sort()).toEqual([orders, audit].sort());
        expect(store.queueName(orders)).toBe('orders');
        expect(() => store.queueId('nope')).toThrow(expect.objectContaining({ code: 'QUEUE_NOT_FOUND' }));
        expect(store.hasQueue(orders)).toBe(true);
        expect(store.hasQueue('nope')).toBe(false);
        expect(store.queueConfig(orders)).toMatchObject({ name: 'orders', retentionMs: 60_000, maxMessages: 10, schema: { type: 'object' } });
        expect((await store.getQueue('orders')).name).toBe('orders');
        await expect(store.createQueue({ name: 'orders' })).rejects.toMatchObject({ code: 'QUEUE_EXISTS' });
        await expect(store.getQueue('nope')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
        expect(events).toEqual([
          { type: 'created', queue: orders, name: 'orders' },
          { type: 'created', queue: audit, name: 'audit' },
        ]);
      });

      it('updates settings: a value sets, null removes, undefined leaves', async () => {
        const q = await create('q', { retentionMs: 60_000, maxMessages: 10 });
        const events: unknown[] = [];
        store.onQueueEvent((event) => events.push(event));
        const updated = await store.updateQueue('q', { retentionMs: null, maxMessages: 20, schema: { type: 'string' } });
        expect(updated.retentionMs).toBeUndefined();
        expect(updated.maxMessages).toBe(20);
        expect(updated.schema).toEqual({ type: 'string' });
        const again = await store.updateQueue('q', { schema: null });
        expect(again.schema).toBeUndefined();
        expect(again.maxMessages).toBe(20);
        await expect(store.updateQueue('nope', { maxMessages: 1 })).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
        expect(events).toEqual([
          { type: 'updated', queue: q, name: 'q' },
          { type: 'updated', queue: q, name: 'q' },
        ]);
      });

      it('purges every message and keeps the queue, which goes on taking messages', async () => {
        const q = await create('q');
        await store.append(q, inputs('a', 5));
        expect(await store.purgeQueue('q')).toBe(5);
        expect(await all(q)).toEqual([]);
        expect((await store.getQueue('q')).messages).toBe(0);
        await store.append(q, inputs('b', 2));
        expect(data(await all(q))).toEqual(['b0', 'b1']);
        expect(await store.purgeQueue('q')).toBe(2);
      });

      it('deletes a queue with its messages; a new queue of the same name starts empty', async () => {
        const events: { type: string; queue: string }[] = [];
        store.onQueueEvent((event) => events.push(event));
        const old = await create('q');
        await store.append(old, inputs('old', 3));
        expect(await store.deleteQueue('q')).toBe(3);
        expect(store.hasQueue(old)).toBe(false);
        expect(store.queueName(old)).toBeUndefined();
        await expect(store.listMessages(old, { limit: 10 })).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
        await expect(store.deleteQueue('q')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
        const fresh = await create('q');
        expect(fresh).not.toBe(old);
        expect(await all(fresh)).toEqual([]);
        expect(events.map((e) => e.type)).toEqual(['created', 'deleted', 'created']);
      });
    });

    describe('rename', () => {
      it('renames a queue: its id, messages, listeners, cursors and deliveries stay; envelopes carry the new name; the old name is free', async () => {
        const q = await create('orders');
        const [a, b] = await store.append(q, inputs('m', 2));
        const { deliveries } = store;
        await deliveries.saveListener(listener('L', [q]));
        const consumer = consume('L', q, 2);
        const [da, db] = [await take(consumer), await take(consumer)];
        consumer.dead(da!, failed(3));
        consumer.retry(db!, failed(1), 1);
        await consumer.close();
        const [open] = await deliveries.openDeliveries('L');
        expect(open).toMatchObject({ messageId: b!.id, attempts: [failed(1)] });
        const events: unknown[] = [];
        store.onQueueEvent((event) => events.push(event));

        const info = await store.renameQueue('orders', 'orders.v1');
        expect(info).toMatchObject({ name: 'orders.v1', messages: 2 });
        expect(events).toEqual([{ type: 'renamed', queue: q, name: 'orders.v1', previous: 'orders' }]);
        expect(store.queueId('orders.v1')).toBe(q);
        expect(store.queueName(q)).toBe('orders.v1');
        expect(store.listQueues().map((x) => x.name)).toEqual(['orders.v1']);
        await expect(store.getQueue('orders')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
        expect((await all(q)).map((m) => [m.queue, m.data])).toEqual([
          ['orders.v1', 'm0'],
          ['orders.v1', 'm1'],
        ]);
        expect(await store.getMessage(q, a!.id)).toMatchObject({ queue: 'orders.v1', data: 'm0' });
        const [c] = await store.append(q, inputs('after', 1));
        expect(c!.queue).toBe('orders.v1');
        expect(await deliveries.openDeliveries('L')).toEqual([open]);
        expect((await deliveries.deadDeliveries('L')).map((r) => r.messageId)).toEqual([a!.id]);

        await expect(store.renameQueue('nope', 'x')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
        await create('taken');
        await expect(store.renameQueue('orders.v1', 'taken')).rejects.toMatchObject({ code: 'QUEUE_EXISTS' });
        // The old name makes a new, empty queue.
        const again = await create('orders');
        expect(again).not.toBe(q);
        expect(await all(again)).toEqual([]);

        await reopen();
        expect(store.queueId('orders.v1')).toBe(q);
        expect(store.queueId('orders')).toBe(again);
        expect(data(await all(q))).toEqual(['m0', 'm1', 'after0']);
        expect((await all(q))[0]!.queue).toBe('orders.v1');
        expect(await all(again)).toEqual([]);
        expect(store.deliveries.listener('L')?.queues).toEqual([q]);
        expect(await store.deliveries.openDeliveries('L')).toEqual([open]);
        expect((await store.deliveries.deadDeliveries('L')).map((r) => r.messageId)).toEqual([a!.id]);
        // Its consumer goes on after a (settled dead) with b's retry, under the new name.
        const resumed = await take(consume('L', q));
        expect(resumed.message).toMatchObject({ id: b!.id, queue: 'orders.v1' });
        expect(resumed.record.attempts).toEqual([failed(1)]);
      });

      it('keeps only the last of renames made while an earlier one is being written, and a queue created under a freed name', async () => {
        const q = await create('a');
        await store.append(q, inputs('m', 1));
        // Started together: the later renames change the catalogue while the first write is in flight.
        await Promise.all([store.renameQueue('a', 'b'), store.renameQueue('b', 'c'), store.createQueue({ name: 'a' })]);
        expect(store.listQueues().map((x) => x.name)).toEqual(['a', 'c']);
        await reopen();
        expect(store.listQueues().map((x) => x.name)).toEqual(['a', 'c']);
        expect(store.queueId('c')).toBe(q);
        expect(data(await all(q))).toEqual(['m0']);
        expect(await all(store.queueId('a'))).toEqual([]);
      });
    });

    describe('messages', () => {
      it('keeps concurrent appends in the order they were made, and reports each after it is stored, in that order', async () => {
        const q = await create('q');
        const seen: string[] = [];
        store.onAppend((queue, messages) => {
          expect(queue).toBe(q);
          seen.push(...data(messages));
        });
        const batches = await Promise.all(Array.from({ length: 20 }, (_, b) => store.append(q, inputs(`b${b}-`, 5))));
        const expected = Array.from({ length: 20 }, (_, b) => data(inputs(`b${b}-`, 5))).flat();
        expect(batches.flat().map((m) => m.data)).toEqual(expected);
        expect(data(await all(q))).toEqual(expected);
        expect(seen).toEqual(expected);
        const [first] = batches[0]!;
        expect(first).toMatchObject({ queue: 'q', data: 'b0-0' });
        expect(await store.getMessage(q, first!.id)).toEqual(first);
        const info = await store.getQueue('q');
        expect(info.messages).toBe(100);
        expect(info.firstId).toBe(first!.id);
        expect(info.lastId).toBe(batches[19]![4]!.id);
      });

      it('pages from the start, from every position, from the end, and from a time', async () => {
        const q = await create('q');
        const early = await store.append(q, inputs('e', 5));
        // Every early message was stored by the time append resolved (a batch
        // may span milliseconds, so its publishedAt is no bound): a later
        // millisecond puts the time start between the two groups.
        const storedEarly = Date.now();
        await waitFor(() => Date.now() > storedEarly, 20_000, 'the clock to move on');
        const since = Date.now();
        const late = await store.append(q, inputs('l', 5));
        const every = [...early, ...late];

        expect(await store.listMessages(q, { limit: 100 })).toEqual(every);
        expect(await store.listMessages(q, { limit: 3 })).toEqual(every.slice(0, 3));
        for (let i = 0; i < every.length; i++) {
          expect(await store.listMessages(q, { afterId: every[i]!.id, limit: 100 })).toEqual(every.slice(i + 1));
        }
        // The end: nothing after the last position, and nothing counted.
        expect(await store.listMessages(q, { afterId: every[9]!.id, limit: 100 })).toEqual([]);
        expect(await store.countMessages(q, { afterId: every[9]!.id })).toEqual({ count: 0, lastId: undefined });
        // A time start, alone and with a position (the later of the two wins).
        expect(await store.listMessages(q, { sinceMs: since, limit: 100 })).toEqual(late);
        expect(await store.listMessages(q, { sinceMs: since, afterId: every[1]!.id, limit: 100 })).toEqual(late);
        expect(await store.listMessages(q, { sinceMs: since, afterId: late[2]!.id, limit: 100 })).toEqual(late.slice(3));
        expect(await store.listMessages(q, { sinceMs: Date.now() + 60_000, limit: 100 })).toEqual([]);
        // Counting from the start and from a position names the last message.
        expect(await store.countMessages(q, {})).toEqual({ count: 10, lastId: late[4]!.id });
        expect(await store.countMessages(q, { afterId: early[2]!.id })).toEqual({ count: 7, lastId: late[4]!.id });
        expect((await store.readMessages(q, { afterId: early[0]!.id, limit: 2 })).messages).toEqual(every.slice(1, 3));
      });

      it('goes on from the page before with its opaque next token, from any start, to an empty page at the end', async () => {
        const q = await create('q');
        const every = await store.append(q, inputs('m', 10));
        /** Every page's messages, each page asked for with the token of the one before. */
        async function pages(first: { afterId?: Position; sinceMs?: number }, limit: number): Promise<Envelope[][]> {
          const out: Envelope[][] = [];
          let page = await store.readMessages(q, { ...first, limit });
          while (page.messages.length > 0) {
            out.push(page.messages);
            expect(page.next).toBeDefined();
            page = await store.readMessages(q, { next: page.next, limit });
          }
          return out;
        }
        expect(await pages({}, 3)).toEqual([every.slice(0, 3), every.slice(3, 6), every.slice(6, 9), every.slice(9)]);
        expect((await pages({ afterId: every[4]!.id }, 4)).flat()).toEqual(every.slice(5));
        expect((await pages({ sinceMs: 0 }, 100)).flat()).toEqual(every);
        // A token handed back later goes on with what was appended since.
        const first = await store.readMessages(q, { limit: 10 });
        const end = await store.readMessages(q, { next: first.next, limit: 10 });
        expect(end.messages).toEqual([]);
        const more = await store.append(q, inputs('n', 2));
        expect((await store.readMessages(q, { next: end.next ?? first.next, limit: 10 })).messages).toEqual(more);
        await expect(store.readMessages(q, { next: 'not a token', limit: 10 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      });

      it('deletes one message, and answers MESSAGE_NOT_FOUND for it afterwards', async () => {
        const q = await create('q');
        const stored = await store.append(q, inputs('m', 3));
        await store.deleteMessage(q, stored[1]!.id);
        expect(data(await all(q))).toEqual(['m0', 'm2']);
        await expect(store.getMessage(q, stored[1]!.id)).rejects.toMatchObject({ code: 'MESSAGE_NOT_FOUND' });
        await expect(store.deleteMessage(q, stored[1]!.id)).rejects.toMatchObject({ code: 'MESSAGE_NOT_FOUND' });
        expect((await store.getQueue('q')).messages).toBe(2);
      });

      it('stores a keyed message once and answers a repeat of its key with the first id', async () => {
        const q = await create('q');
        const first = await store.appendOnce(q, [{ data: 'a', key: 'k1' }, { data: 'b' }]);
        expect(first.duplicates).toEqual([]);
        expect(first.stored.map((m) => m.data)).toEqual(['a', 'b']);
        const again = await store.appendOnce(q, [{ data: 'a2', key: 'k1' }, { data: 'c', key: 'k2' }, { data: 'c2', key: 'k2' }]);
        expect(again.ids[0]).toBe(first.ids[0]);
        expect(again.duplicates).toEqual([0, 2]);
        expect(again.ids[2]).toBe(again.ids[1]);
        expect(again.stored.map((m) => m.data)).toEqual(['c']);
        expect(data(await all(q))).toEqual(['a', 'b', 'c']);
      });
    });

    describe('retention', () => {
      it('removes messages past their queue age limit, leaving other queues alone', async () => {
        const short = await create('short', { retentionMs: 1000 });
        const keep = await create('keep');
        await store.append(short, inputs('s', 4));
        await store.append(keep, inputs('k', 2));
        expect(await store.enforceRetention(Date.now() - 60_000)).toBe(0);
        expect(await store.enforceRetention(Date.now() + 60_000)).toBe(4);
        expect(await all(short)).toEqual([]);
        expect((await store.getQueue('short')).messages).toBe(0);
        expect(data(await all(keep))).toEqual(['k0', 'k1']);
      });

      it('keeps at most maxMessages, dropping the oldest', async () => {
        const q = await create('q', { maxMessages: 3 });
        await store.append(q, inputs('m', 5));
        // Waits for the messages themselves: a counter may change before the removal is on disk.
        await waitFor(async () => (await all(q)).length === 3, 20_000, 'the queue to be trimmed to 3');
        expect(data(await all(q))).toEqual(['m2', 'm3', 'm4']);
        await waitFor(async () => (await store.getQueue('q')).messages === 3, 20_000, 'the count to follow');
      });
    });

    describe('listeners', () => {
      it('registers, finds and removes listeners, each queue starting where it was told', async () => {
        const q = await create('q');
        const [m] = await store.append(q, inputs('m', 1));
        const { deliveries } = store;
        await deliveries.saveListener(listener('L1', [q], { name: 'hook' }), 'end');
        await deliveries.saveListener(listener('L2', [q]));
        expect(deliveries.listener('L1')).toMatchObject({ id: 'L1', name: 'hook', queues: [q] });
        expect(deliveries.byName('hook')?.id).toBe('L1');
        expect(deliveries.byName('nope')).toBeUndefined();
        expect(deliveries.listeners().map((l) => l.id).sort()).toEqual(['L1', 'L2']);
        const [n] = await store.append(q, inputs('n', 1));
        // L1 started at the end when it was saved: m is behind it; L2 takes everything.
        expect((await take(consume('L1', q))).message).toEqual(n);
        expect((await take(consume('L2', q))).message).toEqual(m);
        // Saving again replaces the record and keeps the position.
        await deliveries.saveListener({ ...deliveries.listener('L1')!, state: 'paused' }, 'all');
        expect(deliveries.listener('L1')?.state).toBe('paused');
        await deliveries.removeListener('L1');
        expect(deliveries.listener('L1')).toBeUndefined();
        expect(deliveries.listeners().map((l) => l.id)).toEqual(['L2']);
      });

      it('a listener starting at a time takes the messages stored from then on', async () => {
        const q = await create('q');
        await store.append(q, inputs('early', 2));
        const storedEarly = Date.now();
        await waitFor(() => Date.now() > storedEarly, 20_000, 'the clock to move on');
        const since = Date.now();
        const [late] = await store.append(q, inputs('late', 1));
        await store.deliveries.saveListener(listener('L', [q]), { sinceMs: since });
        expect((await take(consume('L', q))).message).toEqual(late);
        // Not durable: the start is the consumer's own.
        expect((await take(store.consumer(listener('T', [q]), q, { durable: false, start: { sinceMs: since }, maxInFlight: 1 }))).message).toEqual(late);
      });

      it('a deleted queue leaves its listeners: one with no queue left is removed, one with others keeps them', async () => {
        const qa = await create('a');
        const qb = await create('b');
        const [m] = await store.append(qa, inputs('m', 1));
        const { deliveries } = store;
        await deliveries.saveListener(listener('ONLY', [qa]));
        await deliveries.saveListener(listener('BOTH', [qa, qb]));
        const consumer = consume('BOTH', qa);
        const d = await take(consumer);
        consumer.dead(d, failed(1));
        await consumer.close();
        expect((await deliveries.deadDeliveries('BOTH')).map((r) => r.messageId)).toEqual([m!.id]);
        const events: { type: string; removedListeners?: string[] }[] = [];
        store.onQueueEvent((event) => events.push(event));
        await store.deleteQueue('a');
        expect(events).toEqual([{ type: 'deleted', queue: qa, name: 'a', removedListeners: ['ONLY'] }]);
        expect(deliveries.listener('ONLY')).toBeUndefined();
        expect(deliveries.listener('BOTH')?.queues).toEqual([qb]);
        await deliveries.forgetQueueRecords('BOTH', qa);
        expect(await deliveries.deadDeliveries('BOTH')).toEqual([]);
        // A queue of the same name made again starts from its beginning for the listener.
        const again = await create('a');
        const [fresh] = await store.append(again, inputs('fresh', 1));
        expect((await take(consume('BOTH', again))).message).toEqual(fresh);
      });
    });

    describe('consumers', () => {
      it('hands out messages in order, one at a time with maxInFlight 1, and settles them in order', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('L', [q]));
        const consumer = consume('L', q);
        const outcome = await store.appendOnce(q, inputs('m', 3));
        const stored = outcome.stored;
        const first = await take(consumer);
        expect(first.message).toEqual(stored[0]);
        expect(first.record).toMatchObject({ listenerId: 'L', queue: q, messageId: stored[0]!.id, attempts: [] });
        // The second is not handed out while the first is out.
        const second = take(consumer);
        expect(consumer.settledThrough(first.position)).toBe(false);
        consumer.delivered(first, ok(1));
        expect(consumer.settledThrough(first.position)).toBe(true);
        expect(consumer.settledThrough(outcome.through)).toBe(false);
        const d2 = await second;
        expect(d2.message).toEqual(stored[1]);
        consumer.delivered(d2, ok(1));
        const d3 = await take(consumer);
        consumer.delivered(d3, ok(1));
        expect(consumer.settledThrough(outcome.through)).toBe(true);
        expect(consumer.progress()).toMatchObject({ inFlight: 0, pending: 0, lagMs: 0, cursor: d3.message!.id });
        await waitFor(async () => (await store.deliveries.list({ state: 'delivered', limit: 10 })).length === 3, 20_000, 'the history to hold all three');
        expect((await store.deliveries.get('L', stored[1]!.id))?.attempts).toEqual([ok(1)]);
      });

      it('counts what is pending after the position, and the lag of the oldest', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('L', [q]));
        const consumer = consume('L', q);
        await store.append(q, inputs('m', 5));
        await waitFor(() => consumer.progress().pending === 5, 20_000, 'the backlog to be counted');
        const d = await take(consumer);
        await consumer.refresh();
        expect(consumer.progress().lagMs).toBeGreaterThanOrEqual(0);
        consumer.delivered(d, ok(1));
        expect(consumer.progress().pending).toBe(4);
      });

      it('retries after the delay, holding back the messages after it, and keeps the attempt', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('L', [q]));
        const consumer = consume('L', q);
        const [a, b] = await store.append(q, inputs('m', 2));
        const first = await take(consumer);
        const failedAt = Date.now();
        consumer.retry(first, failed(1), 300);
        expect(consumer.progress().nextRetryAt).toBeGreaterThanOrEqual(failedAt + 300);
        expect(consumer.progress().inFlight).toBe(1);
        await waitFor(async () => (await store.deliveries.openDeliveries('L')).length === 1, 20_000, 'the retry to be kept');
        const [open] = await store.deliveries.openDeliveries('L');
        expect(open).toMatchObject({ messageId: a!.id, state: 'failed', attempts: [failed(1)] });
        expect(open!.nextAttemptAt).toBeDefined();
        // The same message again, not before its delay, and not b meanwhile.
        const again = await take(consumer);
        // Timers run on libuv's clock, not Date's: a timer due in 300 ms can fire when Date
        // has moved 299 ms (seen once), so the bound allows that millisecond and no more.
        expect(Date.now() - failedAt).toBeGreaterThanOrEqual(299);
        expect(again.message).toEqual(a);
        expect(again.record.attempts).toEqual([failed(1)]);
        consumer.delivered(again, ok(2));
        const next = await take(consumer);
        expect(next.message).toEqual(b);
        await waitFor(async () => (await store.deliveries.openDeliveries('L')).length === 0, 20_000, 'the open record to go');
        expect((await store.deliveries.get('L', a!.id))).toMatchObject({ state: 'delivered', attempts: [failed(1), ok(2)] });
      });

      it('settles a dead delivery in order and keeps it apart; requeue hands it out again, out of order, for a fresh round', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('L', [q]));
        const consumer = consume('L', q);
        const [a, b, c] = await store.append(q, inputs('m', 3));
        const da = await take(consumer);
        consumer.dead(da, failed(3));
        expect(consumer.settledThrough(da.position)).toBe(true);
        expect(consumer.wasDead(a!.id)).toBe(true);
        const db = await take(consumer);
        expect(db.message).toEqual(b);
        consumer.delivered(db, ok(1));
        await waitFor(async () => (await store.deliveries.deadDeliveries('L')).length === 1, 20_000, 'the dead one to be kept');
        expect((await store.deliveries.list({ state: 'dead', limit: 10 })).map((r) => r.messageId)).toEqual([a!.id]);
        expect(await store.deliveries.openDeliveries('L')).toEqual([]);

        expect(await consumer.requeue(b!.id)).toBe(false); // delivered, not dead
        expect(await consumer.requeue(a!.id)).toBe(true);
        expect(await store.deliveries.deadDeliveries('L')).toEqual([]);
        const [requeued] = await store.deliveries.openDeliveries('L');
        expect(requeued).toMatchObject({ messageId: a!.id, state: 'pending', roundStart: 3 });
        // Handed out before c, which is next in order, with its earlier attempts.
        const again = await take(consumer);
        expect(again.message).toEqual(a);
        expect(again.record).toMatchObject({ roundStart: 3, attempts: [failed(3)] });
        consumer.delivered(again, ok(4));
        expect(consumer.wasDead(a!.id)).toBe(false);
        expect((await take(consumer)).message).toEqual(c);
        await waitFor(async () => (await store.deliveries.get('L', a!.id))?.state === 'delivered', 20_000, 'the requeued one to be delivered');
      });

      it('hands a released delivery out first again, in order, without counting an attempt', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('L', [q], { concurrency: 2 }));
        const consumer = consume('L', q, 2);
        const [a, b, c] = await store.append(q, inputs('m', 3));
        const da = await take(consumer);
        const db = await take(consumer);
        expect([da.message, db.message]).toEqual([a, b]);
        // Paused: both come back, in whatever order their sends returned.
        consumer.release(db);
        consumer.release(da);
        expect(consumer.progress().inFlight).toBe(0);
        const again = [await take(consumer), await take(consumer)];
        expect(again.map((d) => d.message)).toEqual([a, b]);
        expect(again.map((d) => d.record.attempts)).toEqual([[], []]);
        for (const d of again) consumer.delivered(d, ok(1));
        expect((await take(consumer)).message).toEqual(c);
      });

      it('with several out, settles in order: the position waits for the oldest', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('L', [q], { concurrency: 3 }));
        const consumer = consume('L', q, 3);
        const outcome = await store.appendOnce(q, inputs('m', 3));
        const out = [await take(consumer), await take(consumer), await take(consumer)];
        expect(out.map((d) => d.message)).toEqual(outcome.stored);
        consumer.delivered(out[2]!, ok(1));
        consumer.delivered(out[1]!, ok(1));
        expect(consumer.settledThrough(out[1]!.position)).toBe(false);
        expect(consumer.progress().cursor).toBeUndefined();
        consumer.delivered(out[0]!, ok(1));
        expect(consumer.settledThrough(outcome.through)).toBe(true);
        // And that is what a reopened backend resumes from.
        await consumer.close();
        await reopen();
        const [next] = await store.append(q, inputs('next', 1));
        expect((await take(consume('L', q))).message).toEqual(next);
      });

      it('does not hand out a message removed before its turn, nor count it pending', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('L', [q]));
        const consumer = consume('L', q);
        const [a, b, c, d] = await store.append(q, inputs('m', 4));
        const da = await take(consumer);
        expect(da.message).toEqual(a);
        await waitFor(() => consumer.progress().pending === 4, 20_000, 'the backlog to be counted');
        await store.deleteMessage(q, b!.id);
        expect(consumer.progress().pending).toBe(3);
        consumer.delivered(da, ok(1));
        const dc = await take(consumer);
        expect(dc.message).toEqual(c);
        // Retention too: c (out) and d (not handed out yet) go.
        await store.updateQueue('q', { retentionMs: 1000 });
        await store.enforceRetention(Date.now() + 60_000);
        expect(consumer.progress().pending).toBe(0);
        consumer.delivered(dc, ok(1));
        const [e] = await store.append(q, inputs('e', 1));
        const de = await take(consumer);
        expect(de.message).toEqual(e);
        consumer.delivered(de, ok(1));
        expect(consumer.settledThrough(de.position)).toBe(true);
        expect(consumer.wasDead(d!.id)).toBe(false);
      });

      it('a consumer that is not durable starts where it is told and stores nothing', async () => {
        const q = await create('q');
        await store.append(q, inputs('old', 2));
        const consumer = store.consumer(listener('T', [q]), q, { durable: false, start: 'end', maxInFlight: 1 });
        const [m] = await store.append(q, inputs('new', 1));
        const d = await take(consumer);
        expect(d.message).toEqual(m);
        consumer.retry(d, failed(1), 0);
        const again = await take(consumer);
        consumer.dead(again, failed(2));
        await consumer.close();
        expect(await store.deliveries.get('T', m!.id)).toBeUndefined();
        expect(await consumer.requeue(m!.id)).toBe(false);
      });

      it('hands out nothing once its signal aborts or it is closed', async () => {
        const q = await create('q');
        const consumer = store.consumer(listener('T', [q]), q, { durable: false, maxInFlight: 1 });
        const abort = new AbortController();
        const waiting = consumer.next(abort.signal);
        abort.abort();
        expect(await waiting).toBeUndefined();
        const waitingToo = consumer.next(new AbortController().signal);
        await consumer.close();
        expect(await waitingToo).toBeUndefined();
      });
    });

    describe('choosing', () => {
      it('hands out only messages whose name a filter matches; the others move the position without a record, and settledThrough passes them', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('F', [q], { filters: ['order.*', 'payment.failed'] }));
        const record = store.deliveries.listener('F')!;
        let passed = 0;
        const consumer = store.consumer(record, q, { durable: true, maxInFlight: 1, filters: record.filters, onPassed: () => passed++ });
        consumers.push(consumer);
        const names = ['order.created', 'payment.succeeded', undefined, 'order.refund.issued', 'payment.failed', 'inventory.low'];
        const outcome = await store.appendOnce(q, names.map((name, i) => (name === undefined ? { data: `m${i}` } : { data: `m${i}`, name })));
        const first = await take(consumer);
        expect(first.message?.name).toBe('order.created');
        consumer.delivered(first, ok(1));
        const second = await take(consumer);
        expect(second.message?.name).toBe('payment.failed');
        // Not settled yet: the position waits before it, though the skipped ones before it are passed.
        expect(consumer.settledThrough(outcome.through)).toBe(false);
        consumer.delivered(second, ok(1));
        // The last one is skipped once the consumer looks for the next.
        const none = await consumer.next(AbortSignal.timeout(300));
        expect(none).toBeUndefined();
        expect(consumer.settledThrough(outcome.through)).toBe(true);
        expect(passed).toBeGreaterThan(0);
        expect(consumer.progress().pending).toBe(0);
        await waitFor(async () => (await store.deliveries.list({ listenerId: 'F', state: 'delivered', limit: 10 })).length === 2, 20_000, 'the two deliveries in the history');
        for (const skipped of [1, 2, 3, 5]) expect(await store.deliveries.get('F', outcome.ids[skipped]!)).toBeUndefined();
        // Kept by the listener record across a reopen.
        await reopen();
        expect(store.deliveries.listener('F')?.filters).toEqual(['order.*', 'payment.failed']);
      });

      it('moves a durable position back to a message or a time, and a consumer opened after goes on from there', async () => {
        const q = await create('q');
        await store.deliveries.saveListener(listener('R', [q]));
        const stored = await store.append(q, inputs('m', 4));
        const consumer = consume('R', q);
        for (let i = 0; i < 4; i++) consumer.delivered(await take(consumer), ok(1));
        expect(consumer.settledThrough(stored[3]!.id)).toBe(true);
        await consumer.close();

        expect(await store.deliveries.movePosition('R', q, { messageId: stored[2]!.id })).toBe(2);
        const again = consume('R', q);
        const d = await take(again);
        expect(d.message).toEqual(stored[2]);
        expect(d.record.attempts).toEqual([]);
        again.delivered(d, ok(1));
        await again.close();

        // To a time before everything: the whole queue, and it survives a reopen.
        expect(await store.deliveries.movePosition('R', q, { sinceMs: Date.parse(stored[0]!.publishedAt) })).toBe(4);
        await reopen();
        const fromStart = consume('R', q);
        expect((await take(fromStart)).message).toEqual(stored[0]);
        await expect(store.deliveries.movePosition('R', q, { messageId: '01JF8Z3K4M5N6P7Q8R9S0T1V2W' })).rejects.toMatchObject({ code: 'MESSAGE_NOT_FOUND' });
      });
    });

    describe('reopen', () => {
      it('keeps queues, messages, keys, listeners, positions, open, dead and delivered records after close', async () => {
        const q = await create('q', { retentionMs: 3_600_000, maxMessages: 1000 });
        const once = await store.appendOnce(q, [{ data: 'k', key: 'key-1' }]);
        await store.deliveries.saveListener(listener('L', [q], { name: 'hook', concurrency: 3 }), 'end');
        const stored = await store.append(q, inputs('m', 3));
        const consumer = consume('L', q, 3);
        const [d0, d1, d2] = [await take(consumer), await take(consumer), await take(consumer)];
        consumer.delivered(d0!, ok(1));
        consumer.retry(d1!, failed(1), 1);
        consumer.dead(d2!, failed(3));
        await consumer.close();
        const open = (await store.deliveries.openDeliveries('L'))[0]!;
        const dead = (await store.deliveries.deadDeliveries('L'))[0]!;
        expect(open).toMatchObject({ messageId: stored[1]!.id, attempts: [failed(1)] });
        expect(dead).toMatchObject({ messageId: stored[2]!.id, attempts: [failed(3)] });
        const before = await all(q);

        await reopen();
        expect(store.queueConfig(q)).toMatchObject({ name: 'q', retentionMs: 3_600_000, maxMessages: 1000 });
        expect((await store.getQueue('q')).messages).toBe(4);
        expect(await all(q)).toEqual(before);
        expect(store.deliveries.listener('L')).toMatchObject({ id: 'L', name: 'hook', queues: [q] });
        expect(await store.deliveries.openDeliveries('L')).toEqual([open]);
        expect(await store.deliveries.deadDeliveries('L')).toEqual([dead]);
        expect((await store.deliveries.get('L', stored[0]!.id))?.state).toBe('delivered');
        // The consumer resumes after the first message, with the retry's attempts.
        const resumed = await take(consume('L', q, 3));
        expect(resumed.message).toEqual(stored[1]);
        expect(resumed.record.attempts).toEqual([failed(1)]);
        // A key seen before the restart still dedupes; new messages follow the old ones.
        const repeat = await store.appendOnce(q, [{ data: 'k again', key: 'key-1' }]);
        expect(repeat.ids).toEqual(once.ids);
        expect(repeat.stored).toEqual([]);
        const [next] = await store.append(q, inputs('after', 1));
        expect(await store.listMessages(q, { afterId: stored[2]!.id, limit: 10 })).toEqual([next]);
        expect(data(await all(q))).toEqual(['k', 'm0', 'm1', 'm2', 'after0']);
      });

      it('keeps a deleted queue deleted and a purge purged', async () => {
        const gone = await create('gone');
        const purged = await create('purged');
        await store.append(gone, inputs('g', 2));
        await store.append(purged, inputs('p', 2));
        await store.deleteQueue('gone');
        await store.purgeQueue('purged');
        await reopen();
        expect(store.hasQueue(gone)).toBe(false);
        expect(await all(purged)).toEqual([]);
        expect(store.stats()).toMatchObject({ queues: 1, messages: 0 });
      });
    });
  });
}
