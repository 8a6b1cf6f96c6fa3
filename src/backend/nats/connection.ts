/**
 * The connection to the NATS servers, and what a failed request means.
 *
 * Two failures look alike to a client and must be told apart: a leader
 * election (JetStream answers "no responders", which v3 reports as
 * JetStreamNotEnabled, or a request times out, for the 4-9 s an election
 * takes on 2.9) is ridden out by retrying; the servers all gone (the client
 * is disconnected) fails at once, naming the servers tried, so a command
 * does not hang.
 */
import { readFileSync } from 'node:fs';
import { checkServerIdentity as checkIdentity } from 'node:tls';
import type { PeerCertificate } from 'node:tls';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import { DiscueError } from '../../protocol/errors.js';
import { redact } from '../../protocol/store.js';

export interface NatsSettings {
  /** Comma-separated server URLs (credentials may be in them: nats://user:pass@host:4222). */
  servers: string;
  /** Prefix of every stream, bucket and subject (default `discue`). */
  namespace?: string;
  /** Replicas of every stream and bucket (default 1). */
  replicas?: number;
  /** A .creds file (JWT and nkey seed). */
  creds?: string;
  /** A CA file for tls:// servers. */
  ca?: string;
}

/**
 * The client's options from discue's settings. The client takes bare
 * host:port servers (it mangles credentials in a URL), so user and password
 * or a token come out of the URLs here; every URL must carry the same ones.
 * A tls:// URL asks for TLS (with the CA file, when given).
 */
export function connectOptions(settings: Pick<NatsSettings, 'servers' | 'creds' | 'ca'>): { options: NodeConnectionOptions; shown: string[] } {
  const urls = settings.servers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const servers: string[] = [];
  const auths = new Set<string>();
  let tls = false;
  for (const text of urls) {
    const url = new URL(text);
    if (url.protocol === 'tls:') tls = true;
    auths.add(`${decodeURIComponent(url.username)}\n${decodeURIComponent(url.password)}`);
    servers.push(`${url.hostname}:${url.port || '4222'}`);
  }
  if (auths.size > 1) {
    throw new DiscueError('INVALID_ARGUMENT', `the NATS servers ${redact(settings.servers)} carry different credentials; give the same user and password (or token) in every URL`);
  }
  const options: NodeConnectionOptions = { servers };
  const [user, pass] = [...auths][0]?.split('\n') ?? ['', ''];
  if (user && pass) Object.assign(options, { user, pass });
  else if (user) options.token = user;
  if (settings.creds !== undefined) {
    let text: string;
    try {
      text = readFileSync(settings.creds, 'utf8');
    } catch (err) {
      throw new DiscueError('INVALID_ARGUMENT', `cannot read the NATS credentials file ${settings.creds} (store.creds): ${(err as Error).message}`, { cause: err });
    }
    options.authenticator = credsAuthenticator(new TextEncoder().encode(text));
  }
  if (tls || settings.ca !== undefined) {
    // The client names no server for a server given by IP address (its TLS
    // upgrade then checks the certificate against "localhost"): a
    // certificate that the CA signed for any of the configured hosts is accepted.
    const hosts = urls.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, ''));
    const checkServerIdentity = (host: string, cert: PeerCertificate): Error | undefined => {
      const first = checkIdentity(host, cert);
      if (first === undefined) return undefined;
      return hosts.some((h) => checkIdentity(h, cert) === undefined) ? undefined : first;
    };
    // Passed through to node:tls (the client's type names only its own keys).
    const tlsOptions: Record<string, unknown> = settings.ca === undefined ? { checkServerIdentity } : { caFile: settings.ca, checkServerIdentity };
    options.tls = tlsOptions as NodeConnectionOptions['tls'];
  }
  return { options, shown: urls.map(redact) };
}

/**
 * How long a request keeps retrying through an election before giving up
 * (measured on 2.9: a publish stalls 4.5-7.6 s when the stream leader dies).
 */
export const ELECTION_RIDE_MS = 10_000;
/**
 * How long a request waits for the client to reconnect (to another server
 * of the cluster) before it reports the servers unavailable: one server
 * dying is ridden out, all of them down fails within a few seconds.
 */
export const RECONNECT_GRACE_MS = 3_000;

export class Connection {
  private connected = true;
  private reconnected: { promise: Promise<void>; resolve: () => void } = signal();
  /** Requests waiting for an answer: each is abandoned when the connection drops. */
  private readonly waiting = new Set<(err: Error) => void>();

  private constructor(
    readonly nc: NatsConnection,
    readonly servers: string[],
  ) {
    void this.watch();
  }

  static async open(settings: Pick<NatsSettings, 'servers' | 'creds' | 'ca'>): Promise<Connection> {
    const { options, shown: list } = connectOptions(settings);
    try {
      const nc = await connect({
        ...options,
        name: 'discue',
        // The daemon outlives any outage: it reconnects by itself, forever.
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        timeout: 5_000,
        // Async traces build an Error per request up front (stack capture), on every publish, fetch and ack;
        // the errors discue reports name what it was doing instead (unavailable(), `what`).
        noAsyncTraces: true,
      });
      return new Connection(nc, list);
    } catch (err) {
      if (/authorization|authentication|auth(entication)? (violation|expired|error)/i.test(String((err as Error)?.message))) {
        throw new DiscueError(
          'BACKEND_UNAVAILABLE',
          `the NATS servers (${list.join(', ')}) refused discue's credentials (${(err as Error).message}): check the user and password or token in the store URL, or store.creds`,
          { cause: err },
        );
      }
      throw unavailable(list, err);
    }
  }

  private async watch(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        for (const abandon of [...this.waiting]) abandon(new Error('disconnected while waiting for an answer'));
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.reconnected.resolve();
        this.reconnected = signal();
      }
    }
  }

  isConnected(): boolean {
    return this.connected && !this.nc.isClosed();
  }

  /** Which server the client is talking to now (for `daemon status`). */
  get server(): string {
    return this.nc.getServer();
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }

  /**
   * Runs a request, retrying through an election; fails at once with a clear
   * error when the servers are unreachable, and passes other errors on.
   */
  async request<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + ELECTION_RIDE_MS;
    for (let wait = 100; ; wait = Math.min(wait * 2, 1_000)) {
      if (this.nc.isClosed()) throw unavailable(this.servers, new Error('the connection is closed'), what);
      if (!this.connected) await this.reconnect(what);
      try {
        // A request out when the connection drops gets no answer: it stops
        // waiting at once (and is tried again after the reconnect), rather
        // than after its own timeout.
        let abandon!: (err: Error) => void;
        const dropped = new Promise<never>((_, reject) => (abandon = reject));
        this.waiting.add(abandon);
        try {
          return await Promise.race([fn(), dropped]);
        } finally {
          this.waiting.delete(abandon);
        }
      } catch (err) {
        if (!retryable(err) || Date.now() + wait > deadline) {
          if (retryable(err) || !this.connected) throw unavailable(this.servers, err, what);
          throw err;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private async reconnect(what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable(this.servers, new Error(`not connected for ${RECONNECT_GRACE_MS / 1000} s`), what)), RECONNECT_GRACE_MS);
    });
    try {
      await Promise.race([this.reconnected.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** An election or a lost leader: the same request will succeed in a few seconds. */
export function retryable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const name = err.constructor?.name ?? err.name;
  if (name === 'JetStreamNotEnabled' || name === 'NoRespondersError' || name === 'TimeoutError') return true;
  if (name === 'RequestError' && retryable((err as { cause?: unknown }).cause)) return true;
  return /no responders|timeout|timed out|JetStream system temporarily unavailable|no suitable peers|leader|disconnect|reconnect/i.test(err.message);
}

export function unavailable(servers: string[], cause: unknown, what?: string): DiscueError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new DiscueError(
    'BACKEND_UNAVAILABLE',
    `the NATS servers (${servers.join(', ')}) did not answer${what ? ` while trying to ${what}` : ''}: ${reason}`,
    { cause },
  );
}
