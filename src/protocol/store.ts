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
  /** An absolute directory (leveldb) or the server URLs, comma-separated (nats; credentials may be in them). */
  location: string;
  /** NATS: replicas of every stream and bucket (`store.replicas`, --replicas; default 1). */
  replicas?: number;
  /** NATS: a .creds file (JWT and nkey seed) to authenticate with (`store.creds`). */
  creds?: string;
  /** NATS over tls://: a CA file the servers' certificates must chain to (`store.ca`). */
  ca?: string;
}

/** Most replicas a JetStream stream takes. */
export const MAX_REPLICAS = 5;

/** `store.replicas` as given by a user: 1 to 5. */
export function parseReplicas(value: string, where = 'store.replicas'): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > MAX_REPLICAS) {
    throw new DiscueError('INVALID_ARGUMENT', `${where} takes a whole number from 1 to ${MAX_REPLICAS} (JetStream's limit), got ${JSON.stringify(value)}`);
  }
  return n;
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
  // A comma-separated list of servers: every one a nats:// or tls:// URL.
  const urls = value.split(',').map((u) => u.trim());
  for (const url of urls) {
    const each = /^([a-z][a-z0-9+.-]*:)\/\//i.exec(url)?.[1]?.toLowerCase();
    let ok = each !== undefined && NATS_SCHEMES.includes(each);
    try {
      if (ok) new URL(url);
    } catch {
      ok = false;
    }
    if (!ok) throw new DiscueError('INVALID_ARGUMENT', `${where}: ${JSON.stringify(redact(url))} is not a nats:// or tls:// URL (give servers as nats://host:4222,nats://host2:4222)`);
  }
  return { kind: 'nats', location: urls.join(',') };
}

/** A URL list with its passwords and tokens masked, for anything shown or logged. */
export function redact(location: string): string {
  return location.replace(/(\/\/)([^@/]*)@/g, (_, slashes: string, auth: string) => `${slashes}${auth.includes(':') ? `${auth.slice(0, auth.indexOf(':'))}:***` : '***'}@`);
}

/** How a store reads in `daemon status` and messages: `leveldb /home/me/.discue/data`. */
export function storeText(store: StoreLocation): string {
  return `${store.kind} ${redact(store.location)}`;
}
