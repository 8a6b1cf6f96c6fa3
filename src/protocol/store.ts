/**
 * The `store` setting: where the daemon keeps queues, messages and listeners,
 * and so which backend it runs. A path is a LevelDB directory (the default:
 * $DISCUE_HOME/data); a nats:// or tls:// URL names a NATS JetStream cluster.
 * Read once where it enters (flag, DISCUE_STORE, config key `store`); which
 * kinds this build can run is decided in one place, backend/index.ts.
 */
import { resolve } from 'node:path';
import { DiscueError } from './errors.js';

export type StoreKind = 'leveldb' | 'nats';

export interface StoreLocation {
  kind: StoreKind;
  /** An absolute directory (leveldb) or the server URL (nats). */
  location: string;
}

const NATS_SCHEMES = ['nats:', 'tls:'];

/** A store as given by a user, checked: `where` names the flag, variable or key it came from. */
export function parseStore(value: string, where = 'store'): StoreLocation {
  if (value.trim() === '') throw new DiscueError('INVALID_ARGUMENT', `${where} must be a directory or a nats:// URL`);
  const scheme = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'leveldb', location: resolve(value) };
  if (!NATS_SCHEMES.includes(scheme)) {
    throw new DiscueError(
      'INVALID_ARGUMENT',
      `${where} ${JSON.stringify(value)} is no store discue knows: give a directory (LevelDB) or a nats:// or tls:// URL (NATS JetStream)`,
    );
  }
  try {
    new URL(value);
  } catch {
    throw new DiscueError('INVALID_ARGUMENT', `${where} ${JSON.stringify(value)} is not a valid URL`);
  }
  return { kind: 'nats', location: value };
}

/** How a store reads in `daemon status` and messages: `leveldb /home/me/.discue/data`. */
export function storeText(store: StoreLocation): string {
  return `${store.kind} ${store.location}`;
}
