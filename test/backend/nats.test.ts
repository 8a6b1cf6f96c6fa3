/**
 * Runs the backend conformance suite against the NATS JetStream backend, on
 * one nats-server started for this file. Each test gets its own namespace
 * (streams, buckets and subjects under its own prefix), removed afterwards.
 * Skipped, with the reason printed, where nats-server is not installed
 * (never in CI: .ci/run installs it).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe } from 'vitest';
import { DEFAULT_DEDUPE } from '../../src/backend/level/dedupe.js';
import { NatsStore } from '../../src/backend/nats/store.js';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsServers } from '../helpers/nats.js';
import { removeNamespace } from '../helpers/nats-clean.js';
import { backendSuite } from './suite.js';

const available = natsAvailable('the NATS backend conformance suite');

describe.runIf(available)('NATS JetStream backend', () => {
  let servers: NatsServers;
  beforeAll(async () => {
    servers = await natsServers(1);
  });
  afterAll(async () => {
    await servers?.stop();
  });

  backendSuite('NATS JetStream (one server)', {
    place: async () => `t${randomBytes(5).toString('hex')}`,
    make: (place) => new NatsStore({ servers: servers.urls, namespace: place, dedupe: DEFAULT_DEDUPE }),
    remove: (place) => removeNamespace(servers.urls, place),
  });
});
