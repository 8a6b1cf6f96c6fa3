/**
 * The one place that picks and makes the backend. Everything above
 * src/backend/ speaks the contract (types.ts) and gets its Store from here.
 * Today there is one backend, LevelDB in the data directory.
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
