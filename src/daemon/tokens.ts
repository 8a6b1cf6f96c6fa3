/**
 * Tokens of the HTTP API: created, listed and revoked over the socket (the
 * admin channel), checked by src/http/. A token is shown once, at creation;
 * only its SHA-256 is kept, in $DISCUE_HOME/tokens.json (0600). The file is
 * this daemon's own: daemons of a cluster share no tokens yet.
 *
 * A token is 32 random bytes, so a fast hash is enough (nothing to brute
 * force, unlike a password). A presented token is looked up by its SHA-256,
 * never by its text: how long the lookup takes depends only on the digest,
 * which a client cannot steer toward a stored one, so timing tells nothing
 * about which token is near.
 */
import { hash, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { DiscueError } from '../protocol/errors.js';
import { validateQueueName } from '../protocol/validate.js';
import type { TokenInfo } from '../protocol/wire.js';

export const TOKEN_PREFIX = 'dq_';

/** What a token may do; `publish` and `read` optionally for one queue (`publish:orders`). */
export type ScopeKind = 'admin' | 'publish' | 'read' | 'listeners' | 'metrics';
const KINDS: readonly ScopeKind[] = ['admin', 'publish', 'read', 'listeners', 'metrics'];
const PER_QUEUE: readonly ScopeKind[] = ['publish', 'read'];

interface TokenRecord extends TokenInfo {
  /** Hex SHA-256 of the whole token. */
  hash: string;
}

export function validateScope(text: unknown): string {
  if (typeof text !== 'string') throw new DiscueError('INVALID_ARGUMENT', 'a scope must be a string');
  const [kind, queue, ...rest] = text.split(':');
  if (!KINDS.includes(kind as ScopeKind) || rest.length > 0 || (queue !== undefined && !PER_QUEUE.includes(kind as ScopeKind))) {
    throw new DiscueError(
      'INVALID_ARGUMENT',
      `invalid scope ${JSON.stringify(text)}: use admin, publish, publish:QUEUE, read, read:QUEUE, listeners or metrics`,
    );
  }
  if (queue !== undefined) validateQueueName(queue);
  return text;
}

/** True if scopes allow `kind` (for `queue`, where the request is about one queue). */
export function allows(scopes: readonly string[], kind: ScopeKind, queue?: string): boolean {
  if (scopes.includes('admin') || scopes.includes(kind)) return true;
  return queue !== undefined && PER_QUEUE.includes(kind) && scopes.includes(`${kind}:${queue}`);
}

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Hex SHA-256, as stored: one call, no Hash object (this runs on every HTTP request). */
function hashOf(token: string): string {
  return hash('sha256', token, 'hex');
}

const HASH_RE = /^[0-9a-f]{64}$/;

/** A whole token record: anything else in the file (a hand edit gone wrong) must not take part in a check. */
function isRecord(value: unknown): value is TokenRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.name === 'string' &&
    typeof r.hash === 'string' &&
    HASH_RE.test(r.hash) &&
    typeof r.createdAt === 'string' &&
    Array.isArray(r.scopes) &&
    r.scopes.every((s) => typeof s === 'string')
  );
}

export class TokenStore {
  private records: TokenRecord[] = [];
  /** The records by hash: rebuilt whenever `records` changes (this daemon is the file's only writer). */
  private byHash = new Map<string, TokenRecord>();
  private ignored: unknown[] = [];
  private damage: string | undefined;
  /** Writes one at a time, in order: two creates at once must both be kept. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string) {}

  static async open(path: string): Promise<TokenStore> {
    const store = new TokenStore(path);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return store;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      // Not fatal to the daemon: the socket (the admin channel) must keep working
      // while the user repairs the file; until then no token is accepted.
      store.damage = `${path} is not valid JSON (${(err as Error).message}); fix or remove it (its tokens stop working)`;
      return store;
    }
    const tokens = (parsed as { tokens?: unknown } | null)?.tokens;
    if (!Array.isArray(tokens)) {
      store.damage = `${path} holds no "tokens" array; fix or remove it (its tokens stop working)`;
      return store;
    }
    for (const record of tokens) (isRecord(record) ? store.records : store.ignored).push(record);
    store.index();
    return store;
  }

  /** Why the file cannot be used (then nothing is accepted or written), or undefined. */
  get damaged(): string | undefined {
    return this.damage;
  }

  /** Entries of the file that are not tokens (a careless edit): never accepted, kept as they are when the file is written. */
  get ignoredCount(): number {
    return this.ignored.length;
  }

  private index(): void {
    this.byHash = new Map();
    // The first of two records with one hash (a hand edit) answers, as the file reads.
    for (const r of this.records) if (!this.byHash.has(r.hash)) this.byHash.set(r.hash, r);
  }

  private assertUsable(): void {
    if (this.damage !== undefined) throw new DiscueError('STORAGE_DAMAGED', this.damage);
  }

  list(): TokenInfo[] {
    this.assertUsable();
    return this.records.map(({ name, scopes, createdAt }) => ({ name, scopes: [...scopes], createdAt }));
  }

  async create(name: unknown, scopes: unknown): Promise<TokenInfo & { token: string }> {
    this.assertUsable();
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new DiscueError('INVALID_ARGUMENT', `invalid token name ${JSON.stringify(name)}: use 1-64 characters of a-z A-Z 0-9 . _ -`);
    }
    if (!Array.isArray(scopes) || scopes.length === 0) throw new DiscueError('INVALID_ARGUMENT', 'a token needs at least one --scope');
    const checked = [...new Set(scopes.map(validateScope))];
    if (this.records.some((r) => r.name === name)) {
      throw new DiscueError('TOKEN_EXISTS', `a token named "${name}" exists; revoke it first (\`discue token revoke ${name}\`)`);
    }
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const record: TokenRecord = { name, scopes: checked, createdAt: new Date().toISOString(), hash: hashOf(token) };
    this.records.push(record);
    this.index();
    await this.save();
    return { name, scopes: [...checked], createdAt: record.createdAt, token };
  }

  async revoke(name: unknown): Promise<{ name: string }> {
    this.assertUsable();
    if (typeof name !== 'string' || !NAME_RE.test(name)) throw new DiscueError('INVALID_ARGUMENT', '"name" must be a token name');
    const index = this.records.findIndex((r) => r.name === name);
    if (index < 0) throw new DiscueError('TOKEN_NOT_FOUND', `no token named ${JSON.stringify(name)} (see \`discue token list\`)`);
    this.records.splice(index, 1);
    this.index();
    await this.save();
    return { name };
  }

  /** The scopes of a token, or undefined if it is not one of ours. */
  verify(token: string): string[] | undefined {
    // Told apart from a bad token, without the path: the client is not the file's owner.
    if (this.damage !== undefined) throw new DiscueError('STORAGE_DAMAGED', "the daemon's token file is damaged; its owner finds why in the daemon log");
    return this.byHash.get(hashOf(token))?.scopes;
  }

  private save(): Promise<void> {
    const text = JSON.stringify({ tokens: [...this.records, ...this.ignored] }, null, 2) + '\n';
    this.writing = this.writing.then(async () => {
      // Whole or not at all: a crash mid-write must not lose every token.
      const tmp = `${this.path}.tmp`;
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.path);
    });
    return this.writing;
  }
}
