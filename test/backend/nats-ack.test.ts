/**
 * A delivery settled while its consumer's leader is lost (R3, the leader
 * node killed with SIGKILL just before the ack): the ack is sent again
 * through the election, so an ordered listener's next message comes after
 * the election, not after the whole ack_wait (timeout + margin: 70 s here).
 * The bench's leader kill measured 39 s for the default 30 s timeout when
 * the ack was lost.
 */
import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DEDUPE } from '../../src/backend/level/dedupe.js';
import { NatsStore } from '../../src/backend/nats/store.js';
import type { ListenerRecord } from '../../src/backend/types.js';
import { removeNamespace } from '../helpers/nats-clean.js';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsServers } from '../helpers/nats.js';

const available = natsAvailable('the NATS ack-through-an-election test');
const TIMEOUT_MS = 60_000;
/** Well under ack_wait (TIMEOUT_MS + 10 s), well over an election (4-9 s on 2.9, and a pull that notices). */
const NEXT_WITHIN_MS = 40_000;

describe.runIf(available)('NATS consumer: an ack during an election', () => {
  let servers: NatsServers;
  let store: NatsStore | undefined;
  const namespace = `t${randomBytes(5).toString('hex')}`;

  beforeAll(async () => {
    servers = await natsServers(3);
  });
  afterAll(async () => {
    await store?.close().catch(() => undefined);
    if (servers) await removeNamespace(servers.urls, namespace).catch(() => undefined);
    await servers?.stop();
  });

  it("is sent again once a new leader is elected: the next message does not wait out ack_wait", async () => {
    store = new NatsStore({ servers: servers.urls, namespace, replicas: 3, dedupe: DEFAULT_DEDUPE });
    await store.open();
    await store.createQueue({ name: 'orders' });
    const orders = store.queueId('orders');
    const listener: ListenerRecord = {
      id: 'ORDERED',
      kind: 'http',
      queues: [orders],
      url: 'http://127.0.0.1:9/hook',
      timeoutMs: TIMEOUT_MS,
      maxAttempts: 3,
      retryDelayMs: 100,
      concurrency: 1,
      state: 'active',
      createdAt: new Date().toISOString(),
    };
    await store.deliveries.saveListener(listener);
    const [first, second] = await store.append(orders, [{ data: 'one' }, { data: 'two' }]);
    const consumer = store.consumer(listener, orders, { durable: true, maxInFlight: 1 });
    const stop = new AbortController();
    try {
      const d1 = await consumer.next(stop.signal);
      expect(d1?.message?.id).toBe(first!.id);

      const nc = await connect({ servers: servers.urls.split(',') });
      let leaderName: string | undefined;
      try {
        const jsm = await jetstreamManager(nc);
        let stream = '';
        for await (const name of jsm.streams.names()) if (name.startsWith(`${namespace.toUpperCase()}_Q_`)) stream = name;
        leaderName = (await jsm.consumers.info(stream, `L_${listener.id}`)).cluster?.leader;
      } finally {
        await nc.close();
      }
      const leader = servers.nodes.find((n) => n.name === leaderName);
      expect(leader, `the consumer's leader ${String(leaderName)} is one of ours`).toBeDefined();
      await servers.kill(leader!);

      const t0 = Date.now();
      consumer.delivered(d1!, { attempt: 1, at: new Date().toISOString(), durationMs: 1, ok: true, status: 200 });
      const timer = setTimeout(() => stop.abort(), NEXT_WITHIN_MS);
      const d2 = await consumer.next(stop.signal);
      clearTimeout(timer);
      const waited = Date.now() - t0;
      expect(d2?.message?.id, `the second message within ${NEXT_WITHIN_MS} ms (waited ${waited} ms)`).toBe(second!.id);
      consumer.delivered(d2!, { attempt: 1, at: new Date().toISOString(), durationMs: 1, ok: true, status: 200 });
      await servers.restart(leader!);
    } finally {
      stop.abort();
      await consumer.close();
    }
  }, 120_000);
});
