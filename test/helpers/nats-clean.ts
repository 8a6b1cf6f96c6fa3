/**
 * Removes everything a NATS backend made under one namespace (its queue
 * streams, history stream and KV buckets), so tests sharing one server leave nothing behind.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Names } from '../../src/backend/nats/names.js';

export async function removeNamespace(servers: string, namespace: string): Promise<void> {
  const names = new Names(namespace);
  const nc = await connect({ servers: servers.split(',') });
  try {
    const jsm = await jetstreamManager(nc);
    const mine = new Set([names.catalogBucket, names.deliveriesBucket].map((b) => `KV_${b}`).concat(names.historyStream));
    for await (const stream of jsm.streams.names()) {
      if (stream.startsWith(names.streamPrefix) || mine.has(stream)) await jsm.streams.delete(stream);
    }
  } finally {
    await nc.close();
  }
}
