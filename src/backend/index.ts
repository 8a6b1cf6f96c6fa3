/**
 * The one place that picks and makes the backend. Everything above
 * src/backend/ speaks the contract (types.ts) and gets its Store from here.
 * LevelDB in the data directory by default; NATS JetStream for a nats://
 * or tls:// store URL, whose client libraries are loaded only then (a
 * dynamic import: every other command starts without them).
 */
import { LevelStore } from './level/level.js';
import type { DedupeOptions, Store, StoreLog } from './types.js';

export { DEFAULT_DEDUPE } from './level/dedupe.js';

export interface BackendSettings {
  /** Where LevelDB keeps the data. */
  dataDir: string;
  dedupe: DedupeOptions;
  log: StoreLog;
}

/** A backend, not opened yet. */
export function createBackend(settings: BackendSettings): Store {
  return new LevelStore(settings.dataDir, { dedupe: settings.dedupe, log: settings.log });
}

export interface NatsBackendSettings {
  /** Comma-separated server URLs: nats://host:4222,nats://… (credentials may be in them). */
  servers: string;
  /** Replicas of every stream and bucket (default 1). */
  replicas?: number;
  /** Prefix of every stream, bucket and subject (default `discue`). */
  namespace?: string;
  dedupe: DedupeOptions;
  log: StoreLog;
}

/** Whether a store setting names NATS servers rather than a directory. */
export function isNatsUrl(store: string): boolean {
  return /^(nats|tls):\/\//i.test(store.trim());
}

/** A NATS JetStream backend, not opened yet; loads the NATS client on first use. */
export async function createNatsBackend(settings: NatsBackendSettings): Promise<Store> {
  const { NatsStore } = await import('./nats/store.js');
  return new NatsStore(settings);
}
