/**
 * Makes the NATS JetStream backend, loading its client libraries only now
 * (a dynamic import): the daemon on LevelDB, and every command, start
 * without them. The one way in for backend/index.ts's choice of backend.
 */
import type { DedupeOptions, Store, StoreLog } from './types.js';

export interface NatsBackendSettings {
  /** Comma-separated server URLs: nats://host:4222,nats://… (credentials may be in them). */
  servers: string;
  /** Replicas of every stream and bucket (default 1). */
  replicas?: number;
  /** A .creds file (JWT and nkey seed). */
  creds?: string;
  /** A CA file for tls:// servers. */
  ca?: string;
  /** Prefix of every stream, bucket and subject (default `discue`). */
  namespace?: string;
  dedupe: DedupeOptions;
  log: StoreLog;
}

/** A NATS JetStream backend, not opened yet. */
export async function createNatsBackend(settings: NatsBackendSettings): Promise<Store> {
  const { NatsStore } = await import('./nats/store.js');
  return new NatsStore(settings);
}
