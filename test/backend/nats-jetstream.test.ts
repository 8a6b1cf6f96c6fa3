/**
 * What the NATS backend must do beyond the conformance suite, on one
 * nats-server: two daemons (two stores on one namespace) share queues,
 * listeners and a listener's consumer; a delivery left by a daemon that
 * died goes to the other after ack_wait, with its attempts; nak(delay)
 * arrives on time (no server backoff list: the 2.9 nak trap); the servers
 * down fail a request within seconds with BACKEND_UNAVAILABLE naming them,
 * and the same store goes on once they are back.
 */
import { randomBytes } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ACK_MARGIN_MS } from '../../src/backend/nats/consumer.js';
import { firstIdAt } from '../../src/protocol/ids.js';
import { HISTORY_KEEP } from '../../src/protocol/defaults.js';
import { DEFAULT_DEDUPE } from '../../src/backend/level/dedupe.js';
import { NatsStore } from '../../src/backend/nats/store.js';
import type { Attempt, Consumer, Delivery, ListenerRecord } from '../../src/backend/types.js';
import { removeNamespace } from '../helpers/nats-clean.js';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsServers } from '../helpers/nats.js';

const available = natsAvailable('the NATS backend tests');

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function listener(id: string, queues: string[], extra: Partial<ListenerRecord> = {}): ListenerRecord {
  return {
    id,
    kind: 'http',
    queues,
    url: 'http://127.0.0.1:9/hook',
    timeoutMs: 500,
    maxAttempts: 5,
    retryDelayMs: 100,
    concurrency: 1,
    state: 'active',
    createdAt: new Date().toISOString(),
    ...extra,
  };
}

const failed = (n: number): Attempt => ({ attempt: n, at: new Date().toISOString(), durationMs: 3, ok: false, status: 500, error: 'HTTP 500' });
const ok = (n: number): Attempt => ({ attempt: n, at: new Date().toISOString(), durationMs: 3, ok: true, status: 200 });

async function take(consumer: Consumer, timeoutMs = 30_000): Promise<Delivery> {
  const delivery = await consumer.next(AbortSignal.timeout(timeoutMs));
  if (delivery === undefined) throw new Error(`no delivery within ${timeoutMs} ms`);
  return delivery;
}

describe.runIf(available)('NATS JetStream backend beyond the suite', () => {
  let servers: NatsServers;
  let namespace: string;
  let stores: NatsStore[] = [];

  async function daemon(): Promise<NatsStore> {
    const store = new NatsStore({ servers: servers.urls, namespace, dedupe: DEFAULT_DEDUPE });
    await store.open();
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    servers = await natsServers(1);
  });
  afterAll(async () => {
    await servers?.stop();
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close().catch(() => undefined);
    if (servers.nodes[0]!.process) await removeNamespace(servers.urls, namespace);
  });

  it('two daemons share queues, listeners and the messages either publishes', async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const a = await daemon();
    const b = await daemon();
    const events: string[] = [];
    b.onQueueEvent((event) => events.push(`${event.type} ${event.name}`));
    await a.createQueue({ name: 'orders.eu', maxMessages: 100 });
    const q = a.queueId('orders.eu');
    await until('host B to see the queue', () => b.hasQueue(q));
    expect(b.queueId('orders.eu')).toBe(q);
    await expect(b.createQueue({ name: 'orders.eu' })).rejects.toMatchObject({ code: 'QUEUE_EXISTS' });
    await a.updateQueue('orders.eu', { maxMessages: 50 });
    await until('host B to see the change', async () => b.queueConfig(q).maxMessages === 50);
    const fromA = await a.append(q, [{ data: 'a1' }, { data: 'a2' }]);
    const fromB = await b.append(q, [{ data: 'b1' }]);
    const onA = await a.listMessages(q, { limit: 10 });
    expect(onA).toEqual([...fromA, ...fromB]);
    expect(await b.listMessages(q, { limit: 10 })).toEqual(onA);
    expect(await b.getMessage(q, fromA[1]!.id)).toEqual(fromA[1]);
    // A message id from another host is a position here too (found by the time it carries).
    expect(await b.listMessages(q, { afterId: fromA[0]!.id, limit: 10 })).toEqual(onA.slice(1));

    await a.deliveries.saveListener(listener('L', [q], { name: 'hook' }));
    await until('host B to see the listener', () => b.deliveries.byName('hook')?.id === 'L');
    await a.renameQueue('orders.eu', 'orders.v2');
    await until('host B to see the rename', () => b.queueName(q) === 'orders.v2');
    expect((await b.getMessage(q, fromB[0]!.id)).queue).toBe('orders.v2');
    await a.deleteQueue('orders.v2');
    await until('host B to see the queue go', () => !b.hasQueue(q));
    await until('host B to see the listener go', () => b.deliveries.listener('L') === undefined);
    expect(events).toEqual(['created orders.eu', 'updated orders.eu', 'renamed orders.v2', 'deleted orders.v2']);
  });

  it("a delivery left by a daemon that died goes to the other one after ack_wait, with its attempts", async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const a = await daemon();
    const b = await daemon();
    await a.createQueue({ name: 'q' });
    const q = a.queueId('q');
    const record = listener('L', [q]);
    await a.deliveries.saveListener(record);
    const [m] = await a.append(q, [{ data: 'one' }]);

    const onA = a.consumer(record, q, { durable: true, maxInFlight: 1 });
    const first = await take(onA);
    expect(first.message).toEqual(m);
    const attempt1 = failed(1);
    onA.retry(first, attempt1, 0);
    const second = await take(onA);
    expect(second.record.attempts).toEqual([attempt1]);
    // Host A dies with the second attempt out: no ack, no nak.
    const diedAt = Date.now();
    await (a as unknown as { conn: { nc: { close(): Promise<void> } } }).conn.nc.close();

    const onB = b.consumer(await waitListener(b, 'L'), q, { durable: true, maxInFlight: 1 });
    const third = await take(onB, 60_000);
    // Not before ack_wait (the listener's timeout + the margin): A might still have been working.
    expect(Date.now() - diedAt).toBeGreaterThanOrEqual(record.timeoutMs + ACK_MARGIN_MS - 1_000);
    expect(third.message).toEqual(m);
    expect(third.record.attempts).toEqual([attempt1]);
    const attempt3 = ok(3);
    onB.delivered(third, attempt3);
    expect(onB.settledThrough(third.position)).toBe(true);
    await onB.close();
    expect(await b.deliveries.get('L', m!.id)).toMatchObject({ state: 'delivered', attempts: [attempt1, attempt3] });
  });

  it('a message not published by discue (no id) is skipped by pages as damaged, and handed to a listener as such', async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const store = await daemon();
    await store.createQueue({ name: 'q' });
    const q = store.queueId('q');
    const [first] = await store.append(q, [{ data: 'one' }]);
    // Someone publishes straight to the queue's subject, without discue's id.
    const nc = await connect({ servers: servers.urls.split(',') });
    const jsm = await jetstreamManager(nc);
    let subject = '';
    for await (const info of jsm.streams.list()) if (info.config.name.startsWith(store.names.streamPrefix)) subject = info.config.subjects[0]!;
    await jetstream(nc).publish(subject, 'foreign');
    await nc.close();
    const [last] = await store.append(q, [{ data: 'three' }]);

    const page = await store.readMessages(q, { limit: 10 });
    expect(page.messages).toEqual([first, last]);
    expect(page.damaged).toHaveLength(1);
    const head = await store.readMessages(q, { limit: 1 });
    expect(head.messages).toEqual([first]);
    // The next page starts past the damaged record, at the good one after it.
    const rest = await store.readMessages(q, { afterId: (head as { next?: string }).next, limit: 10 });
    expect(rest.messages).toEqual([last]);

    const record = listener('L', [q]);
    await store.deliveries.saveListener(record);
    const consumer = store.consumer(record, q, { durable: true, maxInFlight: 1 });
    const d1 = await take(consumer);
    consumer.delivered(d1, ok(1));
    const d2 = await take(consumer);
    expect(d2.message).toBeUndefined();
    consumer.dead(d2, { ...failed(1), error: 'damaged' });
    const d3 = await take(consumer);
    expect(d3.message).toEqual(last);
    consumer.delivered(d3, ok(1));
    expect(consumer.settledThrough(d3.position)).toBe(true);
    await consumer.close();
  });

  it("a listener's durable consumers follow its queues: one per queue, made when saved, gone with the queue it leaves or with it", async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const store = await daemon();
    await store.createQueue({ name: 'a' });
    await store.createQueue({ name: 'b' });
    const nc = await connect({ servers: servers.urls.split(',') });
    try {
      const jsm = await jetstreamManager(nc);
      /** Every consumer on this namespace's queue streams, as name:max_ack_pending. */
      const consumersOf = async (): Promise<string[]> => {
        const out: string[] = [];
        for await (const info of jsm.streams.list()) {
          if (!info.config.name.startsWith(store.names.streamPrefix)) continue;
          for await (const c of jsm.consumers.list(info.config.name)) out.push(`${c.name}:${c.config.max_ack_pending}`);
        }
        return out.sort();
      };
      const [a, b] = [store.queueId('a'), store.queueId('b')];
      await store.deliveries.saveListener(listener('L', [a, b], { concurrency: 4 }));
      expect(await consumersOf()).toEqual(['L_L:4', 'L_L:4']);
      await store.deliveries.saveListener(listener('L', [a], { concurrency: 2 }));
      expect(await consumersOf()).toEqual(['L_L:2']);
      await store.deliveries.removeListener('L');
      expect(await consumersOf()).toEqual([]);
    } finally {
      await nc.close();
    }
  });

  it('removes a queue stream no queue names once it is old (an interrupted create or delete), and keeps a young one', async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const store = await daemon();
    await store.createQueue({ name: 'kept' });
    const nc = await connect({ servers: servers.urls.split(',') });
    try {
      const jsm = await jetstreamManager(nc);
      const old = store.names.stream(firstIdAt(Date.now() - 3_600_000));
      const young = store.names.stream(firstIdAt(Date.now()));
      await jsm.streams.add({ name: old, subjects: [`${namespace}.orphan.old`] });
      await jsm.streams.add({ name: young, subjects: [`${namespace}.orphan.young`] });
      await daemon();
      const names: string[] = [];
      for await (const name of jsm.streams.names()) if (name.startsWith(store.names.streamPrefix)) names.push(name);
      expect(names).not.toContain(old);
      expect(names).toContain(young);
      expect(names).toHaveLength(2);
    } finally {
      await nc.close();
    }
  });

  it('hands messages to several next() calls waiting at once without waiting out a pull (concurrency 3)', async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const store = await daemon();
    await store.createQueue({ name: 'q' });
    const q = store.queueId('q');
    const record = listener('L', [q], { concurrency: 3 });
    await store.deliveries.saveListener(record);
    const consumer = store.consumer(record, q, { durable: true, maxInFlight: 3 });
    const handed: Delivery[] = [];
    const stop = new AbortController();
    const waiting = [1, 2, 3].map(() => consumer.next(stop.signal).then((d) => d && handed.push(d)));
    // Two messages for three callers: the pull stays open (up to 5 s) for a third.
    for (const data of ['x', 'y']) await store.append(q, [{ data }]);
    const appendedAt = Date.now();
    await until('two callers to be handed a message', () => handed.length === 2, 10_000);
    expect(Date.now() - appendedAt).toBeLessThan(3_000);
    expect(handed.map((d) => d.message!.data).sort()).toEqual(['x', 'y']);
    for (const d of handed) consumer.delivered(d, ok(1));
    stop.abort();
    await Promise.all(waiting);
    await consumer.close();
  });

  it("keeps the newest HISTORY_KEEP delivered records per listener (the server bounds each listener's subject), a message delivered twice listed once", async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const store = await daemon();
    await store.createQueue({ name: 'q' });
    const q = store.queueId('q');
    const record = listener('L', [q]);
    await store.deliveries.saveListener(record);
    const [m] = await store.append(q, [{ data: 'x' }]);
    const consumer = store.consumer(record, q, { durable: true, maxInFlight: 1 });
    const d = await take(consumer);
    // Delivered, then handed out again (at least once: say the ack was lost) and delivered again.
    consumer.delivered(d, ok(1));
    await consumer.close();
    const again = { ...(await store.deliveries.get('L', m!.id))!, attempts: [ok(1), ok(2)] };
    await (store.deliveries as unknown as { history: { add(r: unknown): Promise<void> } }).history.add(again);
    const listed = await store.deliveries.list({ state: 'delivered', limit: 10 });
    expect(listed).toEqual([again]);
    expect(await store.deliveries.get('L', m!.id)).toEqual(again);

    const nc = await connect({ servers: servers.urls.split(',') });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(store.names.historyStream);
      expect(info.config.max_msgs_per_subject).toBe(HISTORY_KEEP);
      expect(info.config.subjects).toEqual([store.names.historySubject('*')]);
    } finally {
      await nc.close();
    }
  });

  it('nak(delay) arrives on time on every redelivery (no server backoff list)', async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const store = await daemon();
    await store.createQueue({ name: 'q' });
    const q = store.queueId('q');
    const record = listener('L', [q]);
    await store.deliveries.saveListener(record);
    await store.append(q, [{ data: 'x' }]);
    const consumer = store.consumer(record, q, { durable: true, maxInFlight: 1 });
    let delivery = await take(consumer);
    for (let n = 1; n <= 3; n++) {
      const at = Date.now();
      consumer.retry(delivery, failed(n), 300);
      delivery = await take(consumer);
      const waited = Date.now() - at;
      expect(waited).toBeGreaterThanOrEqual(300);
      // With a backoff list, 2.9 made nak(300) on the second delivery take 4.3 s.
      expect(waited, `redelivery ${n + 1}`).toBeLessThan(2_500);
    }
    expect(delivery.record.attempts).toHaveLength(3);
    consumer.delivered(delivery, ok(4));
    await consumer.close();
  });

  it('with the servers down a request fails within seconds, naming them, and the same store goes on when they are back', async () => {
    namespace = `t${randomBytes(5).toString('hex')}`;
    const store = await daemon();
    await store.createQueue({ name: 'q' });
    const q = store.queueId('q');
    const [before] = await store.append(q, [{ data: 'before' }]);
    const node = servers.nodes[0]!;
    await servers.kill(node);
    const startedAt = Date.now();
    const error = await store.append(q, [{ data: 'lost' }]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(error).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect((error as Error).message).toContain(node.url);
    expect(store.stats().warnings.join('\n')).toContain('not connected to the NATS servers');

    await servers.restart(node);
    let after: string | undefined;
    await until('publishing to resume', async () => {
      try {
        after = (await store.append(q, [{ data: 'after' }]))[0]!.id;
        return true;
      } catch {
        return false;
      }
    });
    expect(store.stats().warnings).toEqual([]);
    const listed = await store.listMessages(q, { limit: 10 });
    expect(listed.map((m) => m.id)).toEqual([before!.id, after]);
  });
});

async function waitListener(store: NatsStore, id: string): Promise<ListenerRecord> {
  await until(`listener ${id}`, () => store.deliveries.listener(id) !== undefined);
  return store.deliveries.listener(id)!;
}
