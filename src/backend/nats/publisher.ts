/**
 * JetStream publish on the daemon's hot path, without the client's request
 * machinery: one inbox subscription for every acknowledgement, a counter for
 * reply subjects, one timer for every timeout.
 *
 * Why: `js.publish()` goes through `nc.request()`, which per message builds
 * three Error objects (an async-trace context, a TimeoutError made up
 * front, and a "cancelled" RequestError made after every success), a timer
 * and a Promise.race. Profiled in the daemon at 256 in flight, those Error
 * constructors alone took a fifth of its CPU. The wire is the same: PUB with
 * a Nats-Msg-Id header and a reply subject; the answer is the stream's ack,
 * an API error, or the server's 503 "no responders" during an election.
 *
 * Failures look as they did from js.publish, so Connection.request retries
 * them alike: a timeout (message says so), no responders (the same name).
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import { NoRespondersError, createInbox, headers as natsHeaders } from '@nats-io/transport-node';
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { HEADER } from './names.js';

export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface Waiting {
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
  deadline: number;
}

/** How often waiting publishes are checked against their deadline. */
const SWEEP_MS = 250;

export class AckPublisher {
  private readonly inbox = `${createInbox()}.`;
  private readonly sub: Subscription;
  /** In send order: every deadline is send time + the same timeout (performance.now()), so the oldest are first. */
  private readonly waiting = new Map<string, Waiting>();
  private next = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.sub = nc.subscribe(`${this.inbox}*`, { callback: (_err, msg) => this.answer(msg) });
  }

  /** Publishes `data` with `msgId` as Nats-Msg-Id (and any other headers); resolves with the stream's ack. */
  publish(subject: string, data: string, msgId: string, headers?: MsgHdrs): Promise<PubAck> {
    const h = headers ?? natsHeaders();
    h.set(HEADER.msgId, msgId);
    const token = (this.next++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      this.waiting.set(token, { resolve, reject, deadline: performance.now() + this.timeoutMs });
      try {
        this.nc.publish(subject, data, { reply: this.inbox + token, headers: h });
      } catch (err) {
        this.waiting.delete(token);
        reject(err as Error);
        return;
      }
      if (this.sweeper === undefined) {
        this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
        this.sweeper.unref();
      }
    });
  }

  private answer(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length);
    const w = this.waiting.get(token);
    if (w === undefined) return; // timed out already
    this.waiting.delete(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      w.reject(new NoRespondersError(msg.subject));
      return;
    }
    let reply: { stream?: string; seq?: number; duplicate?: boolean; error?: { code: number; err_code?: number; description: string } };
    try {
      reply = msg.json();
    } catch (err) {
      w.reject(new Error(`invalid JetStream publish ack: ${(err as Error).message}`));
      return;
    }
    if (reply.error !== undefined) w.reject(new JetStreamApiError(reply.error as ConstructorParameters<typeof JetStreamApiError>[0]));
    else if (typeof reply.stream !== 'string' || typeof reply.seq !== 'number') w.reject(new Error('invalid JetStream publish ack'));
    else w.resolve({ stream: reply.stream, seq: reply.seq, duplicate: reply.duplicate === true });
  }

  private sweep(): void {
    // A monotonic clock: with Date.now(), the wall clock stepped back (NTP)
    // by an hour held every publish whose ack was lost for that hour.
    const now = performance.now();
    for (const [token, w] of this.waiting) {
      if (w.deadline > now) break;
      this.waiting.delete(token);
      w.reject(new Error(`JetStream publish timed out after ${this.timeoutMs} ms`));
    }
    if (this.waiting.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.sub.unsubscribe();
    for (const w of this.waiting.values()) w.reject(new Error('the connection is closing'));
    this.waiting.clear();
  }
}
