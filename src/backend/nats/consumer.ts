/**
 * A listener's consumer of one queue on JetStream: one pull consumer per
 * listener × queue, shared by every daemon (durable `L_<lid>`), or an
 * ephemeral one for a foreground listen.
 *
 * - explicit ack; max_ack_pending = the listener's concurrency, so with 1 a
 *   message waiting out its retry delay holds back the ones after it (order);
 * - ack_wait longer than the listener's timeout, and working() while a
 *   delivery is out, so a slow receiver is not handed to a second daemon;
 *   a daemon that dies mid-delivery leaves it to another after ack_wait;
 * - no server `backoff` list: with one, 2.9 mis-times nak(delay) (the nak
 *   trap, shared/SCALEOUT.md); discue's own backoff goes to nak(delayMs);
 * - max_deliver unlimited: discue decides death; dead = own record, then
 *   term() (the MAX_DELIVERIES advisory is lost if nobody listens);
 * - attempts: a record in the deliveries bucket, written before the ack,
 *   nak or term it explains (crash in between: delivered again).
 *
 * The position is the consumer's ack floor (settled in order through
 * there), read from the server after settles and on refresh(), so
 * settledThrough also sees what other daemons settled.
 *
 * A requeued dead delivery was term()ed, so the server will not hand it
 * out again: it is read by sequence and handed out from here, its record
 * marked `requeued` so a restart resumes it too.
 */
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import type { Consumer as JsConsumer, ConsumerConfig, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { Attempt, Consumer, ConsumerOptions, ConsumerProgress, Delivery, DeliveryRecord, Envelope, ListenerRecord, Position, StartAt } from '../types.js';
import { API_TRY_MS } from './connection.js';
import type { Connection } from './connection.js';
import { freshRound } from '../fresh-round.js';
import type { NatsDeliveries, StoredRecord } from './deliveries.js';
import type { Headers } from './names.js';
import { HEADER, messageIdOf } from './names.js';
import { nameMatcher } from '../../protocol/choose.js';

/** How much longer than the listener's timeout the server waits for an outcome. */
export const ACK_MARGIN_MS = 10_000;
/** An ack's payload. One try of a confirmed ack waits API_TRY_MS for the answer (then it is sent again, through an election). */
const ACK = '+ACK';
/** How long one pull waits for messages before asking again. */
const PULL_EXPIRES_MS = 5_000;
/** An idle ephemeral consumer (its daemon gone) is removed by the server after this. */
const EPHEMERAL_IDLE_MS = 60_000;
/** How long a released delivery is held for this consumer before it goes back to the server (nak). */
const HOLD_MS = 10_000;
/** How often an open consumer reads its backlog and ack floor from the server (others settle and publish too). */
const POLL_MS = 1_000;
/** Dead message ids remembered for publish --wait (a bound, not a registry). */
const DEAD_KEEP = 10_000;
const NS_PER_MS = 1_000_000;

/**
 * A nak (with its delay) or a term, confirmed and sent again through an
 * election, as the ack in `delivered`: one lost with the consumer's leader
 * left the message to come back after ack_wait, so a retry came late and a
 * dead message was delivered again.
 */
async function settle(conn: Connection, msg: JsMsg, payload: string): Promise<void> {
  await conn.request('settle a delivery', () => conn.nc.request(replyOf(msg), payload, { timeout: API_TRY_MS }));
}

/** Where a consumer starts: as the contract says, or after a known sequence (a non-durable `end`, resolved when asked for). */
export type ConsumerStart = StartAt | { afterSeq: number };

/** The server side of a listener's consumer; `start` only matters when it is made. */
export function consumerConfig(listener: ListenerRecord, start: ConsumerStart, durableName?: string): Partial<ConsumerConfig> {
  const config: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.Explicit,
    ack_wait: (listener.timeoutMs + ACK_MARGIN_MS) * NS_PER_MS,
    max_ack_pending: Math.max(1, listener.concurrency),
    max_deliver: -1,
    ...startPolicy(start),
  };
  if (durableName !== undefined) config.durable_name = durableName;
  else config.inactive_threshold = EPHEMERAL_IDLE_MS * NS_PER_MS;
  return config;
}

function startPolicy(start: ConsumerStart): Partial<ConsumerConfig> {
  if (start === 'all') return { deliver_policy: DeliverPolicy.All };
  if (typeof start === 'object' && 'afterSeq' in start) return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.afterSeq + 1 };
  // 'end' is the queue's end now, when the consumer is made (not when it is first read).
  // afterIds is resolved to a sequence per queue by the store (ensureConsumers); a queue it leaves out starts at the end.
  if (start === 'end' || 'afterIds' in start) return { deliver_policy: DeliverPolicy.New };
  return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(start.sinceMs).toISOString() };
}

/** What the consumer needs from the store. */
export interface ConsumerHost {
  conn: Connection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  deliveries: NatsDeliveries;
  stream: string;
  consumerName: string;
  /** The envelope of a stored message (undefined when damaged). */
  envelope(headers: Headers | undefined, data: Uint8Array): Envelope | undefined;
  /** A stored message by sequence, or undefined when gone. */
  read(seq: number): Promise<{ envelope: Envelope | undefined; time: number } | undefined>;
  /** The first message after `seq` (for the lag), or undefined. */
  firstAfter(seq: number): Promise<{ time: number } | undefined>;
  /** The last sequence of the queue this process knows of (its own appends and reads). */
  lastSeq(): number;
  /** The sequence of a message id this process has seen stored, if it remembers it. */
  knownSeq(id: string): number | undefined;
}

interface Out {
  delivery: NatsDelivery;
  msg?: JsMsg;
  working?: NodeJS.Timeout;
}

interface NatsDelivery extends Delivery {
  readonly seq: number;
  /** Handed out by this consumer, not the server (a requeued dead delivery). */
  readonly local: boolean;
  /** An open record exists in the bucket for it. */
  readonly hasRecord: boolean;
}

export class NatsConsumer implements Consumer {
  private ready: Promise<JsConsumer> | undefined;
  private readonly buffer: JsMsg[] = [];
  /** Local deliveries due now (requeued, or their retry delay passed). */
  private readonly due: NatsDelivery[] = [];
  private readonly timers = new Map<number, { at: number; timer: NodeJS.Timeout }>();
  private readonly out = new Map<number, Out>();
  /** Retry due times of server-held (nak'd) deliveries, for progress(). */
  private readonly naked = new Map<number, number>();
  private readonly writes = new Set<Promise<unknown>>();
  private readonly deadIds = new Set<string>();
  /** Records of dead deliveries a replay made fresh rounds, by sequence (loadLocal), taken when the server hands their message out. */
  private readonly replayed = new Map<number, DeliveryRecord>();
  /** In-memory records of a non-durable consumer (they live as long as it). */
  private readonly memory = new Map<string, DeliveryRecord>();
  /** Released deliveries, still ours on the server, handed out first again (in stream order). */
  private readonly held: (Out & { hold: NodeJS.Timeout })[] = [];
  /** Positions settled here beyond the floor (out of order, or not yet read back from the server), with their message ids. */
  private readonly settledSeqs = new Map<number, string | undefined>();
  /**
   * The message id at the floor, which progress() shows as the cursor (as
   * LevelDB does, whose positions are ids): known when the floor moved onto
   * a message settled here, else looked up by refresh().
   */
  private floorId: { seq: number; id: string | undefined } | undefined;
  private readonly start: ConsumerStart;
  private poll: NodeJS.Timeout | undefined;
  private fetching: Promise<void> | undefined;
  private pull: ConsumerMessages | undefined;
  /** next() calls waiting for something to hand out: all are woken, the first to look takes it. */
  private readonly waiting = new Set<() => void>();
  private closed = false;
  private ackFloor = 0;
  /** The listener's filters (protocol/choose.ts); undefined: every message is chosen. */
  private readonly matches: ((name: string | undefined) => boolean) | undefined;
  /** The stream's last sequence as the server last told this consumer. */
  private streamLast = 0;
  private lagFrom: number | undefined;
  private floorRefresh: Promise<void> | undefined;
  private floorDirty = false;
  private loadedLocal: Promise<void> | undefined;

  constructor(
    private readonly host: ConsumerHost,
    private readonly listener: ListenerRecord,
    private readonly queue: string,
    private readonly options: ConsumerOptions,
    /** Called once closed (the store stops telling it of removals). */
    private readonly onClose: () => void = () => undefined,
  ) {
    this.matches = nameMatcher(options.filters);
    const start = options.start ?? 'all';
    // `end` is the end when the consumer is asked for, not when the server makes it.
    this.start = start === 'end' && !options.durable ? { afterSeq: host.lastSeq() } : start;
    this.bind().catch(() => undefined);
    this.poll = setInterval(() => {
      if (!this.floorRefresh) this.moved();
    }, POLL_MS);
    this.poll.unref?.();
  }

  private get lid(): string {
    return this.listener.id;
  }

  /** Binds to the durable consumer (made now with `start` if saveListener did not), or makes an ephemeral one. */
  private bind(): Promise<JsConsumer> {
    this.ready ??= (async () => {
      const { conn, jsm, js, stream, consumerName } = this.host;
      const start = this.start;
      let name = consumerName;
      if (this.options.durable) {
        const exists = await conn.request('find a consumer', () => jsm.consumers.info(stream, consumerName)).catch((err) => {
          if (isNotFound(err)) return undefined;
          throw err;
        });
        if (exists === undefined) await conn.request('make a consumer', () => jsm.consumers.add(stream, this.config(start, consumerName)));
        else if (exists.config.max_ack_pending !== this.options.maxInFlight) {
          // The caller's maxInFlight is what the server holds back to (it may differ from the record's concurrency).
          await conn.request('update a consumer', () => jsm.consumers.update(stream, consumerName, { max_ack_pending: this.options.maxInFlight }));
        }
      } else {
        const info = await conn.request('make a consumer', () => jsm.consumers.add(stream, this.config(start)));
        name = info.name;
      }
      const consumer = await conn.request('bind a consumer', () => js.consumers.get(stream, name));
      const info = await conn.request('read a consumer', () => consumer.info(true));
      this.raiseFloor(info.ack_floor.stream_seq);
      this.streamLast = Math.max(this.streamLast, info.delivered.stream_seq + info.num_pending);
      return consumer;
    })();
    return this.ready;
  }

  private config(start: ConsumerStart, durableName?: string): Partial<ConsumerConfig> {
    return { ...consumerConfig(this.listener, start, durableName), max_ack_pending: Math.max(1, this.options.maxInFlight) };
  }

  /**
   * Requeued deliveries of this queue saved before a restart: handed out
   * from here again. Replayed ones: kept for when the server hands out their
   * messages again (as new: their first delivery to this consumer).
   */
  private loadLocal(): Promise<void> {
    this.loadedLocal ??= (async () => {
      if (!this.options.durable) return;
      for (const record of await this.host.deliveries.storedOpen(this.lid)) {
        if (record.queue === this.queue && record.replayed === true && record.seq !== undefined) this.replayed.set(record.seq, plain(record));
        if (record.queue !== this.queue || !isRequeued(record) || record.state === 'dead' || record.seq === undefined) continue;
        const delivery = await this.localDelivery(record, record.seq);
        if (delivery === undefined) continue;
        const at = record.nextAttemptAt === undefined ? 0 : Date.parse(record.nextAttemptAt);
        this.schedule(delivery, at - Date.now());
      }
    })();
    return this.loadedLocal;
  }

  async next(signal: AbortSignal): Promise<Delivery | undefined> {
    await this.loadLocal();
    const consumer = await this.bind();
    for (;;) {
      if (this.closed || signal.aborted) return undefined;
      const again = this.held.shift();
      if (again !== undefined) {
        clearTimeout(again.hold);
        this.out.set(again.delivery.seq, { delivery: again.delivery, msg: again.msg, working: again.working });
        return again.delivery;
      }
      const local = this.due.shift();
      if (local !== undefined) return this.handOut(local);
      const msg = this.buffer.shift();
      if (msg !== undefined && this.matches !== undefined && !this.matches(msg.headers?.get(HEADER.name) || undefined)) {
        // Not chosen (its name matches no filter): settled without an attempt or a record.
        msg.ack();
        this.settledHere(msg.seq, messageIdOf(msg.headers));
        this.options.onPassed?.();
        this.moved();
        continue;
      }
      if (msg !== undefined) {
        const delivery = await this.fromServer(msg);
        if (this.closed || signal.aborted) {
          this.release(delivery);
          return undefined;
        }
        return delivery;
      }
      this.fetching ??= this.fetch(consumer).finally(() => (this.fetching = undefined));
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          this.waiting.delete(done);
          resolve();
        };
        signal.addEventListener('abort', done, { once: true });
        this.waiting.add(done);
        void this.fetching!.then(done, done);
      });
    }
  }

  private wake(): void {
    for (const done of [...this.waiting]) done();
  }

  private async fetch(consumer: JsConsumer): Promise<void> {
    const room = Math.max(1, this.options.maxInFlight - this.out.size - this.buffer.length);
    try {
      const pull = await consumer.fetch({ max_messages: room, expires: PULL_EXPIRES_MS });
      this.pull = pull;
      for await (const msg of pull) {
        if (this.closed) msg.nak();
        else {
          this.buffer.push(msg);
          this.wake();
        }
      }
    } catch (err) {
      if (this.closed) return;
      // A lost leader or a consumer being moved: ask again shortly.
      await new Promise((resolve) => setTimeout(resolve, isNotFound(err) ? 1_000 : 200));
    } finally {
      this.pull = undefined;
    }
  }

  private async fromServer(msg: JsMsg): Promise<NatsDelivery> {
    const message = this.host.envelope(msg.headers, msg.data);
    const messageId = message?.id ?? `seq-${msg.seq}`;
    this.naked.delete(msg.seq);
    // A first delivery has no record; a redelivery (a retry, or a daemon
    // that died mid-delivery) reads what the attempts so far left.
    let stored = msg.info.deliveryCount > 1 ? await this.readRecord(messageId) : undefined;
    if (stored === undefined && this.replayed.has(msg.seq)) stored = this.replayed.get(msg.seq);
    this.replayed.delete(msg.seq);
    const record: DeliveryRecord = stored ?? { listenerId: this.lid, queue: this.queue, messageId, state: 'pending', attempts: [], updatedAt: new Date().toISOString() };
    const delivery: NatsDelivery = { position: String(msg.seq), seq: msg.seq, message, record, local: false, hasRecord: stored !== undefined };
    const out: Out = { delivery, msg };
    // Keep the server from handing it to another daemon while a slow receiver works.
    const every = Math.max(1_000, Math.floor((this.listener.timeoutMs + ACK_MARGIN_MS) / 3));
    out.working = setInterval(() => msg.working(), every);
    out.working.unref?.();
    this.out.set(msg.seq, out);
    return delivery;
  }

  private async readRecord(messageId: string): Promise<DeliveryRecord | undefined> {
    if (!this.options.durable) return this.memory.get(messageId);
    const stored = await this.host.deliveries.getOpen(this.lid, messageId);
    return stored === undefined ? undefined : plain(stored);
  }

  private handOut(delivery: NatsDelivery): NatsDelivery {
    this.out.set(delivery.seq, { delivery });
    return delivery;
  }

  private async localDelivery(record: DeliveryRecord, seq: number): Promise<NatsDelivery | undefined> {
    const stored = await this.host.read(seq);
    if (stored === undefined) return undefined;
    return { position: String(seq), seq, message: stored.envelope, record: plain(record), local: true, hasRecord: true };
  }

  private schedule(delivery: NatsDelivery, delayMs: number): void {
    if (this.closed) return;
    if (delayMs <= 0) {
      this.due.push(delivery);
      this.wake();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(delivery.seq);
      this.schedule(delivery, 0);
    }, delayMs);
    timer.unref?.();
    this.timers.set(delivery.seq, { at: Date.now() + delayMs, timer });
  }

  private take(delivery: Delivery): { d: NatsDelivery; out: Out | undefined } {
    const d = delivery as NatsDelivery;
    const out = this.out.get(d.seq);
    if (out?.working) clearInterval(out.working);
    this.out.delete(d.seq);
    return { d, out };
  }

  private background(work: () => Promise<unknown>): void {
    const run = work().catch(() => undefined);
    this.writes.add(run);
    void run.then(() => this.writes.delete(run));
  }

  private save(record: DeliveryRecord, seq: number, requeued: boolean): Promise<void> {
    if (!this.options.durable) {
      if (record.state === 'delivered') this.memory.delete(record.messageId);
      else this.memory.set(record.messageId, record);
      return Promise.resolve();
    }
    const stored: DeliveryRecord = requeued ? ({ ...record, requeued: true } as DeliveryRecord) : record;
    return this.host.deliveries.putOpen(stored, seq);
  }

  delivered(delivery: Delivery, attempt: Attempt): void {
    const { d, out } = this.take(delivery);
    const record = settled(d.record, 'delivered', attempt);
    if (!d.local) this.settledHere(d.seq, d.record.messageId);
    const hadOpen = d.hasRecord || d.record.attempts.length > 0;
    const ack = async (): Promise<void> => {
      const msg = out?.msg;
      if (msg === undefined) return;
      // Confirmed, and sent again through an election: an ack lost with the
      // consumer's leader left the message pending for the whole ack_wait
      // (timeout + ACK_MARGIN_MS: 40 s by default), and an ordered listener
      // waited behind it (the bench's leader kill measured a 39 s stall).
      // Not ackAck(): it marks the message acked before the answer, so a
      // retry of it (or the ack() that followed) sent nothing.
      await this.host.conn.request('acknowledge a delivery', () => this.host.conn.nc.request(replyOf(msg), ACK, { timeout: API_TRY_MS })).catch(() => undefined);
    };
    this.background(async () => {
      if (!this.options.durable) {
        this.memory.delete(record.messageId);
        await ack();
      } else if (hadOpen) {
        // The open record goes before the ack: acked with it still there, it would be retried again.
        await this.host.deliveries.putDelivered(record, true);
        await ack();
      } else {
        // A first attempt: the history line and the ack go together (one round trip, not two).
        await Promise.all([this.host.deliveries.putDelivered(record, false), ack()]);
      }
      this.moved();
    });
  }

  retry(delivery: Delivery, attempt: Attempt, delayMs: number): void {
    const { d, out } = this.take(delivery);
    const due = Date.now() + delayMs;
    const record: DeliveryRecord = { ...settled(d.record, 'failed', attempt), nextAttemptAt: new Date(due).toISOString() };
    if (!d.local) this.naked.set(d.seq, due);
    this.background(async () => {
      await this.save(record, d.seq, d.local);
      if (d.local) this.schedule({ ...d, record, hasRecord: true }, delayMs);
      // The record is written first: the redelivery reads its attempts.
      else if (out?.msg) await settle(this.host.conn, out.msg, `-NAK ${JSON.stringify({ delay: delayMs * NS_PER_MS })}`);
    });
  }

  dead(delivery: Delivery, attempt: Attempt): void {
    const { d, out } = this.take(delivery);
    const record = settled(d.record, 'dead', attempt);
    if (!d.local) this.settledHere(d.seq, d.record.messageId);
    if (this.deadIds.size >= DEAD_KEEP) this.deadIds.delete(this.deadIds.values().next().value!);
    this.deadIds.add(record.messageId);
    this.background(async () => {
      await this.save(record, d.seq, false);
      if (out?.msg) await settle(this.host.conn, out.msg, '+TERM');
      this.moved();
    });
  }

  release(delivery: Delivery): void {
    const d = delivery as NatsDelivery;
    const out = this.out.get(d.seq);
    this.out.delete(d.seq);
    if (d.local || out?.msg === undefined) {
      // First again: ahead of the ones due after it.
      this.due.unshift(d);
      this.wake();
      return;
    }
    // Still ours on the server (working() goes on): handed out first again,
    // in stream order, unless nobody asks for a while (paused): then back to
    // the server, which hands it out again later (perhaps to another daemon).
    const hold = setTimeout(() => {
      const i = this.held.findIndex((h) => h.delivery === d);
      if (i < 0) return;
      const [gone] = this.held.splice(i, 1);
      if (gone?.working) clearInterval(gone.working);
      gone?.msg?.nak();
    }, HOLD_MS);
    hold.unref?.();
    this.held.push({ ...out, hold });
    this.held.sort((a, b) => a.delivery.seq - b.delivery.seq);
    this.wake();
  }

  async requeue(messageId: string): Promise<boolean> {
    if (this.closed) return false;
    const stored = this.options.durable ? await this.host.deliveries.getOpen(this.lid, messageId) : undefined;
    const record = stored ?? (this.options.durable ? undefined : this.memory.get(messageId));
    if (record === undefined || record.state !== 'dead' || record.queue !== this.queue) return false;
    const seq = (record as StoredRecord).seq;
    if (seq === undefined) return false;
    const fresh = freshRound(plain(record));
    const delivery = await this.localDelivery(fresh, seq);
    if (delivery === undefined) {
      // The message was deleted since it died: nothing to send, so the record goes (as on LevelDB,
      // where the requeued record is dropped when its message is not found); it counts as retried.
      if (this.options.durable) await this.host.deliveries.dropOpen(this.lid, messageId);
      else this.memory.delete(messageId);
      this.deadIds.delete(messageId);
      return true;
    }
    await this.save(fresh, seq, true);
    this.deadIds.delete(messageId);
    this.schedule(delivery, 0);
    return true;
  }

  /**
   * Stored messages after the floor not settled here: from the last
   * sequence known (this process's appends, the server's figures). Counts a
   * message deleted after the floor until the floor passes it.
   */
  private backlog(): number {
    const last = Math.max(this.streamLast, this.host.lastSeq());
    return Math.max(0, last - this.ackFloor - this.settledSeqs.size);
  }

  settledThrough(position: Position): boolean {
    // A sequence, or a message id this process has seen stored.
    const seq = /^\d+$/.test(position) ? Number(position) : this.host.knownSeq(position);
    return seq !== undefined && seq <= this.ackFloor;
  }

  /** Settled here: the floor moves now if it was the next in order (the server's floor follows). */
  private settledHere(seq: number, id: string | undefined): void {
    if (this.settledSeqs.has(seq)) return;
    if (seq > this.ackFloor) this.settledSeqs.set(seq, id);
    this.raiseFloor(this.ackFloor);
  }

  /** A message deleted here: nothing left to deliver, so it counts as settled for the floor and the backlog. */
  removed(seq: number, id: string): void {
    this.settledHere(seq, id);
  }

  /** Every message through `seq` removed here (purge, retention). */
  removedThrough(seq: number): void {
    this.raiseFloor(seq);
  }

  private raiseFloor(floor: number): void {
    this.ackFloor = Math.max(this.ackFloor, floor);
    while (this.settledSeqs.has(this.ackFloor + 1)) this.ackFloor++;
    if (this.settledSeqs.has(this.ackFloor)) this.floorId = { seq: this.ackFloor, id: this.settledSeqs.get(this.ackFloor) };
    for (const seq of this.settledSeqs.keys()) if (seq <= this.ackFloor) this.settledSeqs.delete(seq);
  }

  wasDead(messageId: string): boolean {
    return this.deadIds.has(messageId);
  }

  progress(now: number = Date.now()): ConsumerProgress {
    let nextRetryAt: number | undefined;
    for (const at of [...this.naked.values(), ...[...this.timers.values()].map((t) => t.at)]) {
      if (nextRetryAt === undefined || at < nextRetryAt) nextRetryAt = at;
    }
    const progress: ConsumerProgress = {
      inFlight: this.out.size + this.naked.size + this.timers.size,
      pending: this.backlog(),
      lagMs: this.lagFrom === undefined ? 0 : Math.max(0, now - this.lagFrom),
    };
    if (this.floorId?.seq === this.ackFloor && this.floorId.id !== undefined) progress.cursor = this.floorId.id;
    if (nextRetryAt !== undefined) progress.nextRetryAt = nextRetryAt;
    return progress;
  }

  async refresh(): Promise<void> {
    await this.readFloor();
    if (this.ackFloor > 0 && this.floorId?.seq !== this.ackFloor) {
      // Moved by another daemon, or past a purge: the id is read from the stream (gone when deleted since).
      const seq = this.ackFloor;
      const stored = await this.host.read(seq);
      this.floorId = { seq, id: stored?.envelope?.id };
    }
    const first = this.backlog() > 0 ? await this.host.firstAfter(this.ackFloor) : undefined;
    this.lagFrom = first?.time;
  }

  /** Something settled: read the ack floor again (one read at a time, again if more settled meanwhile). */
  private moved(): void {
    this.floorDirty = true;
    this.floorRefresh ??= (async () => {
      while (this.floorDirty && !this.closed) {
        this.floorDirty = false;
        await this.readFloor().catch(() => undefined);
      }
    })().finally(() => (this.floorRefresh = undefined));
  }

  private async readFloor(): Promise<void> {
    const consumer = await this.bind();
    const info = await this.host.conn.request('read a consumer', () => consumer.info(false));
    const before = this.ackFloor;
    this.raiseFloor(info.ack_floor.stream_seq);
    // The server's floor can carry this one's past messages it never saw (before a start at the end,
    // settled by another daemon): a publish --wait whose check ran at the settle would wait forever.
    if (this.ackFloor > before) this.options.onPassed?.();
    this.streamLast = Math.max(this.streamLast, info.delivered.stream_seq + info.num_pending);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.wake();
    if (this.poll) clearInterval(this.poll);
    // Given back with a delay that outlasts this consumer's last pull request: the server keeps a
    // pull request until it expires, even once the client stopped reading it, so a message given
    // back at once went straight to it and was lost to ack_wait (the listener's timeout + 10 s,
    // seen as a 36 s stall after `daemon restart` of a paused listener).
    const back = PULL_EXPIRES_MS + 500;
    for (const h of this.held.splice(0)) {
      clearTimeout(h.hold);
      if (h.working) clearInterval(h.working);
      h.msg?.nak(back);
    }
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await this.pull?.close().catch(() => undefined);
    for (const msg of this.buffer.splice(0)) msg.nak(back);
    for (const out of this.out.values()) if (out.working) clearInterval(out.working);
    await Promise.allSettled([...this.writes]);
    await this.floorRefresh;
    if (!this.options.durable && this.ready) {
      const consumer = await this.ready.catch(() => undefined);
      const name = consumer ? (await consumer.info(true).catch(() => undefined))?.name : undefined;
      if (name) await this.host.jsm.consumers.delete(this.host.stream, name).catch(() => undefined);
    }
  }
}

function settled(record: DeliveryRecord, state: DeliveryRecord['state'], attempt: Attempt): DeliveryRecord {
  const next: DeliveryRecord = { ...record, state, attempts: [...record.attempts, attempt], updatedAt: new Date().toISOString() };
  delete next.nextAttemptAt;
  return next;
}

/** The subject a message's ack goes to: the client's JsMsg has it (`reply`), its interface does not say so. */
function replyOf(msg: JsMsg): string {
  const reply = (msg as JsMsg & { reply?: unknown }).reply;
  if (typeof reply !== 'string' || reply === '') throw new Error('a JetStream message without a reply subject cannot be acknowledged');
  return reply;
}

function isRequeued(record: StoredRecord): boolean {
  return (record as { requeued?: boolean }).requeued === true;
}

function plain(record: DeliveryRecord): DeliveryRecord {
  const { seq: _seq, requeued: _requeued, replayed: _replayed, ...rest } = record as StoredRecord;
  return rest;
}

function isNotFound(err: unknown): boolean {
  const code = (err as { api_error?: { err_code?: number } })?.api_error?.err_code;
  return code === 10014 || code === 10059 || /consumer not found|stream not found/i.test(String((err as Error)?.message));
}
