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
import type { DeliveryRecord, Envelope, ListenerRecord, Position, QueueConfig, QueueId, Store } from '../../src/backend/types.js';
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

function delivery(listenerId: string, queue: QueueId, message: Envelope, state: DeliveryRecord['state'], attempts: number): DeliveryRecord {
  return {
    listenerId,
    queue,
    messageId: message.id,
    state,
    attempts: Array.from({ length: attempts }, (_, i) => ({
      attempt: i + 1,
      at: new Date().toISOString(),
      durationMs: 5,
      ok: state === 'delivered' && i === attempts - 1,
      ...(state === 'delivered' && i === attempts - 1 ? { status: 200 } : { status: 500, error: 'HTTP 500' }),
    })),
    updatedAt: new Date().toISOString(),
  };
}

const data = (messages: { data: string }[]): string[] => messages.map((m) => m.data);

export function backendSuite(name: string, harness: BackendHarness): void {
  describe(`backend conformance: ${name}`, () => {
    let place: string;
    let store: Store;
    let open: Store[];

    /** Opens (again) the backend at this test's place. */
    async function reopen(): Promise<Store> {
      if (open.includes(store)) {
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
      await reopen();
    });
    afterEach(async () => {
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
        await store.createQueue({ name: 'q', retentionMs: 60_000, maxMessages: 10 });
        const updated = await store.updateQueue('q', { retentionMs: null, maxMessages: 20, schema: { type: 'string' } });
        expect(updated.retentionMs).toBeUndefined();
        expect(updated.maxMessages).toBe(20);
        expect(updated.schema).toEqual({ type: 'string' });
        const again = await store.updateQueue('q', { schema: null });
        expect(again.schema).toBeUndefined();
        expect(again.maxMessages).toBe(20);
        await expect(store.updateQueue('nope', { maxMessages: 1 })).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
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
        await deliveries.saveListener(listener('L', [q]), [{ queue: q, cursor: a!.id }]);
        const open = { ...delivery('L', q, b!, 'failed', 1), nextAttemptAt: new Date(Date.now() + 60_000).toISOString() };
        await deliveries.saveOpen(open);
        await deliveries.settle(delivery('L', q, a!, 'dead', 3), undefined);
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
        expect(deliveries.cursor('L', q)).toBe(a!.id);
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
        expect(store.deliveries.cursor('L', q)).toBe(a!.id);
        expect(await store.deliveries.openDeliveries('L')).toEqual([open]);
        expect((await store.deliveries.deadDeliveries('L')).map((r) => r.messageId)).toEqual([a!.id]);
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

      it('deletes one message, reports it removed, and answers MESSAGE_NOT_FOUND for it afterwards', async () => {
        const q = await create('q');
        const removed: string[][] = [];
        store.onRemove((queue, ids) => removed.push([queue, ...ids]));
        const stored = await store.append(q, inputs('m', 3));
        await store.deleteMessage(q, stored[1]!.id);
        expect(data(await all(q))).toEqual(['m0', 'm2']);
        expect(removed).toEqual([[q, stored[1]!.id]]);
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
      it('removes messages past their queue age limit and reports them, leaving other queues alone', async () => {
        const short = await create('short', { retentionMs: 1000 });
        const keep = await create('keep');
        const removed: string[] = [];
        store.onRemove((queue, ids) => {
          if (queue === short) removed.push(...ids);
        });
        const stored = await store.append(short, inputs('s', 4));
        await store.append(keep, inputs('k', 2));
        expect(await store.enforceRetention(Date.now() - 60_000)).toBe(0);
        expect(await store.enforceRetention(Date.now() + 60_000)).toBe(4);
        expect(removed).toEqual(stored.map((m) => m.id));
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

    describe('listeners and delivery progress', () => {
      it('registers, finds and removes listeners, with the cursors they start from', async () => {
        const q = await create('q');
        const [m] = await store.append(q, inputs('m', 1));
        const { deliveries } = store;
        await deliveries.saveListener(listener('L1', [q], { name: 'hook' }), [{ queue: q, cursor: m!.id }]);
        await deliveries.saveListener(listener('L2', [q]));
        expect(deliveries.listener('L1')).toMatchObject({ id: 'L1', name: 'hook', queues: [q] });
        expect(deliveries.byName('hook')?.id).toBe('L1');
        expect(deliveries.byName('nope')).toBeUndefined();
        expect(deliveries.listeners().map((l) => l.id).sort()).toEqual(['L1', 'L2']);
        expect(deliveries.cursor('L1', q)).toBe(m!.id);
        expect(deliveries.cursor('L2', q)).toBeUndefined();
        // Saving again replaces the record.
        await deliveries.saveListener({ ...deliveries.listener('L1')!, state: 'paused' });
        expect(deliveries.listener('L1')?.state).toBe('paused');
        await deliveries.settle(delivery('L1', q, m!, 'failed', 1), undefined);
        await deliveries.removeListener('L1');
        expect(deliveries.listener('L1')).toBeUndefined();
        expect(deliveries.cursor('L1', q)).toBeUndefined();
        expect(await deliveries.get('L1', m!.id)).toBeUndefined();
        expect(deliveries.listeners().map((l) => l.id)).toEqual(['L2']);
      });

      it('settles in order: delivered moves the cursor and goes to history; failed stays open; advance moves only the cursor', async () => {
        const q = await create('q');
        const [a, b, c] = await store.append(q, inputs('m', 3));
        const { deliveries } = store;
        await deliveries.saveListener(listener('L', [q]));
        await deliveries.settle(delivery('L', q, a!, 'delivered', 1), a!.id);
        expect(deliveries.cursor('L', q)).toBe(a!.id);
        expect(await deliveries.get('L', a!.id)).toMatchObject({ state: 'delivered', messageId: a!.id, queue: q });
        await deliveries.settle(delivery('L', q, b!, 'failed', 2), undefined);
        expect(deliveries.cursor('L', q)).toBe(a!.id);
        expect((await deliveries.openDeliveries('L')).map((r) => r.messageId)).toEqual([b!.id]);
        expect((await deliveries.list({ listenerId: 'L', limit: 10 })).map((r) => r.messageId)).toEqual([b!.id]);
        expect((await deliveries.list({ state: 'delivered', limit: 10 })).map((r) => r.messageId)).toEqual([a!.id]);
        // The retry succeeds: the open record leaves, history keeps every attempt.
        await deliveries.settle(delivery('L', q, b!, 'delivered', 3), b!.id);
        expect(await deliveries.openDeliveries('L')).toEqual([]);
        expect((await deliveries.get('L', b!.id))?.attempts).toHaveLength(3);
        await deliveries.advance('L', q, c!.id);
        expect(deliveries.cursor('L', q)).toBe(c!.id);
      });

      it('keeps a pending retry with its attempts, and forgets a delivery whose message is gone', async () => {
        const q = await create('q');
        const [a] = await store.append(q, inputs('m', 1));
        const { deliveries } = store;
        await deliveries.saveListener(listener('L', [q]));
        const open = { ...delivery('L', q, a!, 'pending', 1), nextAttemptAt: new Date(Date.now() + 1000).toISOString() };
        await deliveries.saveOpen(open);
        expect(await deliveries.openDeliveries('L')).toEqual([open]);
        await deliveries.forget('L', a!.id);
        expect(await deliveries.openDeliveries('L')).toEqual([]);
        expect(await deliveries.get('L', a!.id)).toBeUndefined();
      });

      it('keeps dead deliveries apart until requeued for a fresh round', async () => {
        const q = await create('q');
        const [a, b] = await store.append(q, inputs('m', 2));
        const { deliveries } = store;
        await deliveries.saveListener(listener('L', [q]));
        await deliveries.settle(delivery('L', q, a!, 'dead', 3), a!.id);
        await deliveries.settle(delivery('L', q, b!, 'dead', 3), b!.id);
        expect((await deliveries.deadDeliveries('L')).map((r) => r.messageId)).toEqual([a!.id, b!.id]);
        expect(await deliveries.openDeliveries('L')).toEqual([]);
        expect((await deliveries.list({ state: 'dead', limit: 10 })).map((r) => r.messageId).sort()).toEqual([a!.id, b!.id].sort());
        expect(deliveries.cursor('L', q)).toBe(b!.id);
        // Requeue: a fresh round that remembers the earlier attempts.
        const dead = (await deliveries.get('L', a!.id))!;
        await deliveries.saveOpen({ ...dead, state: 'pending', roundStart: dead.attempts.length, updatedAt: new Date().toISOString() });
        expect((await deliveries.deadDeliveries('L')).map((r) => r.messageId)).toEqual([b!.id]);
        const [requeued] = await deliveries.openDeliveries('L');
        expect(requeued).toMatchObject({ messageId: a!.id, state: 'pending', roundStart: 3 });
        expect(requeued!.attempts).toHaveLength(3);
      });

      it('a deleted queue leaves its listeners: one with no queue left is removed, one with others keeps them', async () => {
        const a = await create('a');
        const b = await create('b');
        const [m] = await store.append(a, inputs('m', 1));
        const { deliveries } = store;
        await deliveries.saveListener(listener('ONLY', [a]));
        await deliveries.saveListener(listener('BOTH', [a, b]), [{ queue: a, cursor: m!.id }]);
        await deliveries.settle(delivery('BOTH', a, m!, 'dead', 3), m!.id);
        const events: { type: string; removedListeners?: string[] }[] = [];
        store.onQueueEvent((event) => events.push(event));
        await store.deleteQueue('a');
        expect(events).toEqual([{ type: 'deleted', queue: a, name: 'a', removedListeners: ['ONLY'] }]);
        expect(deliveries.listener('ONLY')).toBeUndefined();
        expect(deliveries.listener('BOTH')?.queues).toEqual([b]);
        expect(deliveries.cursor('BOTH', a)).toBeUndefined();
        await deliveries.forgetQueueRecords('BOTH', a);
        expect(await deliveries.deadDeliveries('BOTH')).toEqual([]);
      });
    });

    describe('reopen', () => {
      it('keeps queues, messages, keys, listeners, cursors, open, dead and delivered records after close', async () => {
        const q = await create('q', { retentionMs: 3_600_000, maxMessages: 1000 });
        const once = await store.appendOnce(q, [{ data: 'k', key: 'key-1' }]);
        const stored = await store.append(q, inputs('m', 3));
        const { deliveries } = store;
        await deliveries.saveListener(listener('L', [q], { name: 'hook' }), [{ queue: q, cursor: once.ids[0] }]);
        await deliveries.settle(delivery('L', q, stored[0]!, 'delivered', 1), stored[0]!.id);
        const open = delivery('L', q, stored[1]!, 'failed', 1);
        await deliveries.settle(open, undefined);
        const dead = delivery('L', q, stored[2]!, 'dead', 3);
        await deliveries.settle(dead, undefined);
        const before = await all(q);

        await reopen();
        expect(store.queueConfig(q)).toMatchObject({ name: 'q', retentionMs: 3_600_000, maxMessages: 1000 });
        expect((await store.getQueue('q')).messages).toBe(4);
        expect(await all(q)).toEqual(before);
        expect(store.deliveries.listener('L')).toMatchObject({ id: 'L', name: 'hook', queues: [q] });
        expect(store.deliveries.cursor('L', q)).toBe(stored[0]!.id);
        expect(await store.deliveries.openDeliveries('L')).toEqual([open]);
        expect(await store.deliveries.deadDeliveries('L')).toEqual([dead]);
        expect((await store.deliveries.get('L', stored[0]!.id))?.state).toBe('delivered');
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
