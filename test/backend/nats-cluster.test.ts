/**
 * The NATS backend on a three-node JetStream cluster on 127.0.0.1 (R3), with
 * two stores standing for two hosts: both publish at once while the queue
 * stream's leader node is killed with SIGKILL, then restarted. Every append
 * that resolved is stored exactly once, each host's in the order it made
 * them, listed the same on both hosts; a listener's consumer on one host
 * gets every stored message, in order, at least once.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DEDUPE } from '../../src/backend/level/dedupe.js';
import { NatsStore } from '../../src/backend/nats/store.js';
import type { Envelope, ListenerRecord } from '../../src/backend/types.js';
import { removeNamespace } from '../helpers/nats-clean.js';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsServers } from '../helpers/nats.js';

const available = natsAvailable('the NATS cluster test');

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.runIf(available)('NATS backend on a three-node cluster', () => {
  let servers: NatsServers;
  const namespace = `t${randomBytes(5).toString('hex')}`;
  const stores: NatsStore[] = [];

  beforeAll(async () => {
    servers = await natsServers(3);
  });
  afterAll(async () => {
    for (const store of stores) await store.close().catch(() => undefined);
    if (servers) await removeNamespace(servers.urls, namespace).catch(() => undefined);
    await servers?.stop();
  });

  it('stores every acknowledged append once, in order, through the loss of the stream leader', async () => {
    const hostA = new NatsStore({ servers: servers.urls, namespace, replicas: 3, dedupe: DEFAULT_DEDUPE });
    const hostB = new NatsStore({ servers: [...servers.nodes].reverse().map((n) => n.url).join(','), namespace, replicas: 3, dedupe: DEFAULT_DEDUPE });
    for (const store of [hostA, hostB]) {
      await store.open();
      stores.push(store);
    }
    await hostA.createQueue({ name: 'orders' });
    const orders = hostA.queueId('orders');
    await until('host B to see the queue', () => hostB.hasQueue(orders));
    const listener: ListenerRecord = {
      id: 'HOOK',
      kind: 'http',
      queues: [orders],
      url: 'http://127.0.0.1:9/hook',
      timeoutMs: 1_000,
      maxAttempts: 3,
      retryDelayMs: 100,
      concurrency: 1,
      state: 'active',
      createdAt: new Date().toISOString(),
    };
    await hostA.deliveries.saveListener(listener);

    // The listener, delivered on host B for the whole run.
    const received: string[] = [];
    const stop = new AbortController();
    const consumer = hostB.consumer(listener, orders, { durable: true, maxInFlight: 1 });
    const delivering = (async () => {
      while (!stop.signal.aborted) {
        const delivery = await consumer.next(stop.signal).catch(() => undefined);
        if (delivery === undefined) continue;
        received.push(delivery.message!.id);
        consumer.delivered(delivery, { attempt: 1, at: new Date().toISOString(), durationMs: 1, ok: true, status: 200 });
      }
    })();

    const acked: Record<'A' | 'B', string[]> = { A: [], B: [] };
    const failures: Record<'A' | 'B', string[]> = { A: [], B: [] };
    const publish = async (host: 'A' | 'B', store: NatsStore, count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        try {
          const [m] = await store.append(orders, [{ data: `${host}-${i}` }]);
          acked[host].push(m!.id);
        } catch (err) {
          failures[host].push((err as { code?: string }).code ?? String(err));
        }
      }
    };
    const total = 200;
    const running = Promise.all([publish('A', hostA, total), publish('B', hostB, total)]);

    // Kill the stream's leader in the middle of it.
    await until('some publishes', () => acked.A.length >= 40 && acked.B.length >= 40);
    const nc = await connect({ servers: servers.urls.split(',') });
    const jsm = await jetstreamManager(nc);
    let streamName = '';
    for await (const name of jsm.streams.names()) if (name.startsWith(`${namespace.toUpperCase()}_Q_`)) streamName = name;
    const leaderName = (await jsm.streams.info(streamName)).cluster?.leader;
    await nc.close();
    const leader = servers.nodes.find((n) => n.name === leaderName);
    expect(leader, `the leader ${leaderName} is one of ours`).toBeDefined();
    const killedAt = { A: acked.A.length, B: acked.B.length };
    await servers.kill(leader!);
    await running;
    await servers.restart(leader!);

    // Publishing went on after the kill, on both hosts.
    expect(acked.A.length).toBeGreaterThan(killedAt.A);
    expect(acked.B.length).toBeGreaterThan(killedAt.B);
    const listA = await all(hostA, orders);
    const listB = await all(hostB, orders);
    expect(listB).toEqual(listA);
    const ids = listA.map((m) => m.id);
    expect(new Set(ids).size, 'no message stored twice').toBe(ids.length);
    for (const host of ['A', 'B'] as const) {
      const stored = ids.filter((id) => acked[host].includes(id));
      expect(stored, `every append host ${host} saw acknowledged is stored once, in its order`).toEqual(acked[host]);
    }
    // An append that failed may or may not be stored (no answer is not "not stored"); never twice.
    expect(ids.length).toBeLessThanOrEqual(2 * total);

    await until('the listener to get every stored message', () => new Set(received).size === ids.length, 90_000);
    stop.abort();
    await delivering;
    await consumer.close();
    const firstSeen = [...new Set(received)];
    expect(firstSeen, 'in order, at least once').toEqual(ids);
    console.log(
      `cluster run: ${ids.length} stored, ${acked.A.length}+${acked.B.length} acknowledged, failures A ${failures.A.length} (${[...new Set(failures.A)].join(', ')}), ` +
        `B ${failures.B.length}, ${received.length - ids.length} redeliveries`,
    );
  });

  it("an ack sent while the consumer's leader is being elected still lands: the next message follows, not ack_wait later", async () => {
    const store = new NatsStore({ servers: servers.urls, namespace, replicas: 3, dedupe: DEFAULT_DEDUPE });
    await store.open();
    stores.push(store);
    await store.createQueue({ name: 'acks' });
    const q = store.queueId('acks');
    // The default timeout: ack_wait is 40 s, so a lost ack would hold the next message that long.
    const listener: ListenerRecord = {
      id: 'ACKS',
      kind: 'http',
      queues: [q],
      url: 'http://127.0.0.1:9/hook',
      timeoutMs: 30_000,
      maxAttempts: 3,
      retryDelayMs: 100,
      concurrency: 1,
      state: 'active',
      createdAt: new Date().toISOString(),
    };
    await store.deliveries.saveListener(listener);
    const consumer = store.consumer(listener, q, { durable: true, maxInFlight: 1 });
    const [first] = await store.append(q, [{ data: 'first' }]);
    const stop = new AbortController();
    const delivery = await consumer.next(stop.signal);
    expect(delivery?.message?.id).toBe(first!.id);

    const nc = await connect({ servers: servers.urls.split(',') });
    const jsm = await jetstreamManager(nc);
    const leaderName = (await jsm.consumers.info(store.names.stream(q), store.names.consumer(listener.id))).cluster?.leader;
    await nc.close();
    const leader = servers.nodes.find((n) => n.name === leaderName)!;
    await servers.kill(leader);
    consumer.delivered(delivery!, { attempt: 1, at: new Date().toISOString(), durationMs: 1, ok: true, status: 200 });
    const [second] = await store.append(q, [{ data: 'second' }]);
    const startedAt = Date.now();
    const next = await consumer.next(stop.signal);
    const waited = Date.now() - startedAt;
    expect(next?.message?.id).toBe(second!.id);
    // An election takes 4-9 s; ack_wait is 40 s.
    expect(waited, 'the second message waited for the election, not for ack_wait').toBeLessThan(25_000);
    consumer.delivered(next!, { attempt: 1, at: new Date().toISOString(), durationMs: 1, ok: true, status: 200 });
    await consumer.close();
    await servers.restart(leader);
  }, 90_000);
});

async function all(store: NatsStore, queue: string): Promise<Envelope[]> {
  const out: Envelope[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listMessages(queue, { afterId: after, limit: 100 });
    if (page.length === 0) return out;
    out.push(...page);
    after = page[page.length - 1]!.id;
  }
}
