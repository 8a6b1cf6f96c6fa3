/**
 * The connection to the NATS servers, and what a failed request means.
 *
 * Three failures look alike to a client and must be told apart: a leader
 * election (JetStream answers "no responders", which v3 reports as
 * JetStreamNotEnabled, or a request times out, for the 4-9 s an election
 * takes on 2.9) is ridden out by retrying; the servers all gone (the client
 * is disconnected) and a cluster without quorum (no election can end) fail
 * within a few seconds, naming the servers tried, so a command does not hang.
 *
 * Quorum is judged from the cluster as the connected server reports it:
 * every server sends its clients the client URLs of the servers routed to
 * it (`connect_urls`, itself included), and sends them again at once when a
 * route drops. At most half of the most servers ever seen means no quorum,
 * confirmed by asking JetStream's meta leader (account info): a cluster
 * scaled down on purpose (peers removed) never shows its old size again, and
 * without the question would be refused until the daemon restarted. A
 * server whose routes are not advertised reports none: then quorum is not
 * judged, and a request rides the whole election time before failing.
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
 * (measured on 2.9: a publish stalls 4.5-7.6 s when the stream leader dies;
 * a consumer made on a stream whose leader and the meta leader died at once
 * waited longer than 10 s). The cluster without quorum does not wait for it.
 */
export const ELECTION_RIDE_MS = 20_000;
/**
 * How long one try of a JetStream API request (streams, consumers, KV,
 * and a confirmed ack) waits for its answer. A cluster answers in milliseconds; a request asked
 * while its stream's leader is being elected gets no answer at all, and is
 * asked again after this: each step of a sequence (a daemon's start reads
 * three streams in turn) then costs at most this beyond the election, not
 * the client's default 5 s (measured: a start during an election took
 * 11-22 s with 5 s, past the CLI's 20 s for a daemon to start).
 */
export const API_TRY_MS = 2_000;
/**
 * How long a request waits for the client to reconnect (to another server
 * of the cluster) before it reports the servers unavailable: one server
 * dying is ridden out (the client tries the others at once), all of them
 * down fails within a few seconds. 2 s, not 3: a command's 5 s also holds
 * its own start, which on a loaded machine took up to 2 s.
 */
export const RECONNECT_GRACE_MS = 2_000;
/**
 * Without quorum by the count, how long the meta leader is given to answer
 * (a cluster without one answers 503 or not at all), and how long that
 * verdict stands: the first command then pays up to 1 s, the next ones none.
 */
const LEADER_PROBE_MS = 1_000;
const LEADER_PROBE_KEEP_MS = 2_000;
/**
 * The meta leader is asked only once the count has said "no quorum" this
 * long: a leader cut off from its peers keeps answering until raft makes
 * it step down (seconds), and a yes from it then was taken for a cluster
 * scaled down — a publish without quorum rode the 20 s election (seen in
 * CI). Well past the 4-9 s an election takes on 2.9.
 */
const LEADER_TRUSTED_AFTER_MS = 15_000;

export class Connection {
  private connected = true;
  /** The most servers the cluster has been seen with (connect_urls; 0 when they are not advertised). */
  private largest = 0;
  /** The last question to the meta leader while the count said no quorum: when, and whether it answered. */
  private probe: { at: number; answered: Promise<boolean> } | undefined;
  /** Since when the count has said no quorum (undefined while it does not). */
  private lostSince: number | undefined;
  private reconnected: { promise: Promise<void>; resolve: () => void } = signal();
  /** Requests waiting for an answer: each is abandoned when the connection drops. */
  private readonly waiting = new Set<(err: Error) => void>();

  private constructor(
    readonly nc: NatsConnection,
    readonly servers: string[],
  ) {
    this.quorumLost();
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
      } else if (status.type === 'update') {
        // A route dropped or came back: requests out while the quorum went wait for no election.
        if (this.quorumLost()) {
          for (const abandon of [...this.waiting]) abandon(new NoQuorum(this.noQuorum()));
          // Asked now, not at the next command: `daemon status` reads the count.
          void this.noQuorumConfirmed();
        }
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

  /** Servers in the cluster as the connected server reports it now (0: not reported). */
  private reachable(): number {
    return this.nc.info?.connect_urls?.length ?? 0;
  }

  /** At most half of the cluster's servers are up: no stream or meta leader can be elected. */
  quorumLost(): boolean {
    const now = this.reachable();
    this.largest = Math.max(this.largest, now);
    const lost = now > 0 && this.largest > 1 && now * 2 <= this.largest;
    if (!lost) this.lostSince = undefined;
    else this.lostSince ??= Date.now();
    return lost;
  }

  /**
   * quorumLost(), confirmed: when the count has said lost for
   * LEADER_TRUSTED_AFTER_MS, the meta leader is asked. An answer means the
   * servers up still elect leaders, so the cluster is now this size (scaled
   * down), and the count starts from it.
   */
  async noQuorumConfirmed(): Promise<boolean> {
    if (!this.quorumLost()) return false;
    if (Date.now() - this.lostSince! < LEADER_TRUSTED_AFTER_MS) return true;
    if (this.probe === undefined || Date.now() - this.probe.at > LEADER_PROBE_KEEP_MS) {
      this.probe = { at: Date.now(), answered: this.askLeader() };
    }
    if (!(await this.probe.answered)) return true;
    this.probe = undefined;
    this.largest = this.reachable();
    return this.quorumLost();
  }

  private async askLeader(): Promise<boolean> {
    try {
      const answer = await this.nc.request('$JS.API.INFO', undefined, { timeout: LEADER_PROBE_MS });
      return (answer.json() as { error?: unknown }).error === undefined;
    } catch {
      return false;
    }
  }

  /** Why the cluster has no quorum, for errors and warnings. */
  noQuorum(): string {
    return `only ${this.reachable()} of the cluster's ${this.largest} servers are up: no quorum`;
  }

  /**
   * Resolves once requests can be answered: connected (waiting for a
   * reconnect as a request does) and the cluster with quorum. For answers
   * made from memory, which must not pass the cluster's outage off as its state.
   */
  async ready(what: string): Promise<void> {
    if (this.nc.isClosed()) throw unavailable(this.servers, new Error('the connection is closed'), what);
    if (!this.connected) await this.reconnect(what);
    if (await this.noQuorumConfirmed()) throw unavailable(this.servers, new Error(this.noQuorum()), what);
  }

  /** Which server the client is talking to now (for `daemon status`). */
  get server(): string {
    return this.nc.getServer();
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }

  /**
   * Runs a request, retrying through an election; fails within a few
   * seconds with BACKEND_UNAVAILABLE when the servers are unreachable or the
   * cluster has no quorum, and passes other errors on.
   */
  async request<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + ELECTION_RIDE_MS;
    for (let wait = 100; ; wait = Math.min(wait * 2, 1_000)) {
      if (this.nc.isClosed()) throw unavailable(this.servers, new Error('the connection is closed'), what);
      if (!this.connected) await this.reconnect(what);
      // Without quorum nothing is sent: a publish the leader took but could
      // not commit would be stored when the quorum is back, after its
      // command was told it failed.
      if (await this.noQuorumConfirmed()) throw unavailable(this.servers, new Error(this.noQuorum()), what);
      try {
        // A request out when the connection drops gets no answer: it stops
        // waiting at once (and is tried again after the reconnect), rather
        // than after its own timeout. One out when the quorum goes stops too.
        let abandon!: (err: Error) => void;
        const dropped = new Promise<never>((_, reject) => (abandon = reject));
        this.waiting.add(abandon);
        try {
          return await Promise.race([fn(), dropped]);
        } finally {
          this.waiting.delete(abandon);
        }
      } catch (err) {
        // Abandoned when a route dropped: still without quorum once asked, it
        // fails; in a cluster scaled down on purpose it is sent again.
        if (err instanceof NoQuorum) {
          if (Date.now() + wait > deadline || (await this.noQuorumConfirmed())) throw unavailable(this.servers, err, what);
        } else if (!retryable(err) || Date.now() + wait > deadline) {
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

/** A request given up because the cluster has no quorum (no election can end). */
class NoQuorum extends Error {}

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
