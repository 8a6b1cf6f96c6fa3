/**
 * The daemon's JetStream publish (backend/nats/publisher.ts) against one
 * server: acks matched to their publishes, Nats-Msg-Id deduplicating, and
 * the failures Connection.request retries looking as they did from
 * js.publish (no responders by name, a timeout by message).
 */
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryable } from '../../src/backend/nats/connection.js';
import { AckPublisher } from '../../src/backend/nats/publisher.js';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsServers } from '../helpers/nats.js';

const available = natsAvailable('the NATS publisher test');

describe.runIf(available)('AckPublisher', () => {
  let servers: NatsServers;
  let nc: NatsConnection;

  beforeAll(async () => {
    servers = await natsServers(1);
    nc = await connect({ servers: servers.urls });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'PUBTEST', subjects: ['pub.test'], storage: StorageType.File });
  });
  afterAll(async () => {
    await nc?.close();
    await servers?.stop();
  });

  it('resolves each publish with its own sequence, in order, and reports a repeated Nats-Msg-Id as a duplicate of the first', async () => {
    const publisher = new AckPublisher(nc, 5_000);
    try {
      const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => publisher.publish('pub.test', `m${i}`, `id-${i}`)));
      expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(acks.every((a) => a.stream === 'PUBTEST' && !a.duplicate)).toBe(true);
      const again = await publisher.publish('pub.test', 'm7 again', 'id-7');
      expect(again).toEqual({ stream: 'PUBTEST', seq: 8, duplicate: true });
    } finally {
      publisher.close();
    }
  });

  it('fails with no responders where no stream takes the subject, and with a timeout where nothing answers; both retryable', async () => {
    const publisher = new AckPublisher(nc, 300);
    const silent = nc.subscribe('pub.silent');
    try {
      const none = await publisher.publish('pub.nobody', 'x', 'id-x').catch((err: Error) => err);
      expect(none).toBeInstanceOf(Error);
      expect((none as Error).constructor.name).toBe('NoRespondersError');
      expect(retryable(none)).toBe(true);
      const t0 = Date.now();
      const late = await publisher.publish('pub.silent', 'x', 'id-y').catch((err: Error) => err);
      expect((late as Error).message).toMatch(/timed out after 300 ms/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
      expect(retryable(late)).toBe(true);
    } finally {
      silent.unsubscribe();
      publisher.close();
    }
  });

  it('rejects what is still waiting when closed', async () => {
    const publisher = new AckPublisher(nc, 5_000);
    const silent = nc.subscribe('pub.silent2');
    try {
      const waiting = publisher.publish('pub.silent2', 'x', 'id-z').catch((err: Error) => err);
      publisher.close();
      expect(((await waiting) as Error).message).toMatch(/closing/);
    } finally {
      silent.unsubscribe();
    }
  });
});
