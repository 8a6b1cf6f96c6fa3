/**
 * The one place that picks and makes the backend. Everything above
 * src/backend/ speaks the contract (types.ts) and gets its Store from here.
 * The `store` setting (protocol/store.ts) names it: a directory is LevelDB;
 * a nats:// or tls:// URL is NATS JetStream, whose client is loaded only
 * then (load-nats.ts). A new backend plugs in at `backendFor`.
 */
import { DiscueError } from '../protocol/errors.js';
import { storeText } from '../protocol/store.js';
import type { StoreLocation } from '../protocol/store.js';
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
  create(settings: BackendSettings): Promise<Store>;
  /** Salvages damaged data, offline (the caller holds the home lock). */
  repair(store: StoreLocation): Promise<RepairReport>;
}

const LEVEL: Backend = {
  // Loaded when made, not with this module: `discue daemon start` checks its
  // store here before it spawns the daemon, and must not load LevelDB for that.
  create: async (settings) => {
    const { LevelStore } = await import('./level/level.js');
    return new LevelStore(settings.store.location, { dedupe: settings.dedupe, log: settings.log });
  },
  // Loaded only for `daemon repair`.
  repair: async (store) => (await import('./level/repair.js')).repairStore(store.location),
};

const NATS: Backend = {
  create: async ({ store, dedupe, log }) =>
    (await import('./load-nats.js')).createNatsBackend({ servers: store.location, replicas: store.replicas, creds: store.creds, ca: store.ca, dedupe, log }),
  // The servers keep their own replicas: there is no local copy to salvage.
  repair: async (store) => {
    throw new DiscueError(
      'STORE_UNSUPPORTED',
      `the store ${storeText(store)} is a NATS JetStream cluster: \`daemon repair\` salvages a LevelDB directory only; the servers keep their own replicas`,
    );
  },
};

/** The backend of a store: the one choice point. STORE_UNSUPPORTED for a kind this build cannot run. */
function backendFor(store: StoreLocation): Backend {
  switch (store.kind) {
    case 'leveldb':
      return LEVEL;
    case 'nats':
      return NATS;
  }
}

/** Throws STORE_UNSUPPORTED unless this build can run the store: for a check before anything starts. */
export function assertStoreSupported(store: StoreLocation): void {
  backendFor(store);
}

/** A backend, not opened yet (a NATS one loads its client first). */
export function createBackend(settings: BackendSettings): Promise<Store> {
  return backendFor(settings.store).create(settings);
}

export function repairBackend(store: StoreLocation): Promise<RepairReport> {
  return backendFor(store).repair(store);
}
