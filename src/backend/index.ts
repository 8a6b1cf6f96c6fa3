/**
 * The one place that picks and makes the backend. Everything above
 * src/backend/ speaks the contract (types.ts) and gets its Store from here.
 * The `store` setting (protocol/store.ts) names it: a directory is LevelDB;
 * a nats:// or tls:// URL is NATS JetStream, which this build does not have
 * yet. A new backend plugs in at `backendFor`.
 */
import { DiscueError } from '../protocol/errors.js';
import type { StoreLocation } from '../protocol/store.js';
import { LevelStore } from './level/level.js';
import type { RepairReport } from './level/repair.js';
import type { DedupeOptions, Store, StoreLog } from './types.js';

export { DEFAULT_DEDUPE } from './level/dedupe.js';
export type { RepairReport };

export interface BackendSettings {
  /** Where the data lives, and so which backend. */
  store: StoreLocation;
  dedupe: DedupeOptions;
  log: StoreLog;
}

interface Backend {
  create(settings: BackendSettings): Store;
  /** Salvages damaged data, offline (the caller holds the home lock). */
  repair(store: StoreLocation): Promise<RepairReport>;
}

const LEVEL: Backend = {
  create: (settings) => new LevelStore(settings.store.location, { dedupe: settings.dedupe, log: settings.log }),
  // Loaded only for `daemon repair`.
  repair: async (store) => (await import('./level/repair.js')).repairStore(store.location),
};

/** The backend of a store: the one choice point. STORE_UNSUPPORTED for a kind this build cannot run. */
function backendFor(store: StoreLocation): Backend {
  switch (store.kind) {
    case 'leveldb':
      return LEVEL;
    case 'nats':
      throw new DiscueError(
        'STORE_UNSUPPORTED',
        `the store ${store.location} is a NATS JetStream cluster, and this version of discue has no NATS backend yet; ` +
          'use a LevelDB directory (--store DIR, DISCUE_STORE, or `discue config unset store` for the default)',
      );
  }
}

/** Throws STORE_UNSUPPORTED unless this build can run the store: for a check before anything starts. */
export function assertStoreSupported(store: StoreLocation): void {
  backendFor(store);
}

/** A backend, not opened yet. */
export function createBackend(settings: BackendSettings): Store {
  return backendFor(settings.store).create(settings);
}

export function repairBackend(store: StoreLocation): Promise<RepairReport> {
  return backendFor(store).repair(store);
}
