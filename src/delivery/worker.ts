/**
 * One listener × one queue: takes each delivery the backend's consumer
 * hands out, sends it, and tells the consumer the outcome the retry policy
 * decides (decide.ts). It runs up to `concurrency` sends at once. Positions,
 * order, redelivery and retry timers are the consumer's; what is here is the
 * same for every backend: the send, the policy, health and statistics.
 */
import type { Attempt, DeliveryState, ListenerHealth, ListenerProgress } from '../protocol/wire.js';
import type { Consumer, Delivery, DeliveryRecord, ListenerRecord } from '../backend/types.js';
import { Signal } from '../backend/signal.js';
import type { Logger } from '../observe/log.js';
import { attemptNumber, decide } from './decide.js';
import { Gate } from './gate.js';
import type { SendResult, Sender } from './types.js';

const DAMAGED = 'the stored message is damaged (checksum mismatch) and cannot be delivered';

export interface WorkerHooks {
  /** Every attempt, successful or not (statistics). */
  attempted?(worker: Worker, messageId: string, attempt: Attempt): void;
  /** A failed attempt that will be tried again. */
  retrying?(worker: Worker, messageId: string, attempt: Attempt): void;
  /** A message was settled (in order or not). */
  settled(worker: Worker, messageId: string, state: DeliveryState, attempt: Attempt): void;
  /** The receiver said 410 Gone. */
  gone(worker: Worker, reason: string): void;
}

export class Worker {
  readonly listenerId: string;
  private readonly signal = new Signal();
  /** Aborts the sends in flight: only at stop. */
  private readonly abort = new AbortController();
  /** Aborted when the listener stops being active, to stop waiting for the next delivery. */
  private running = new AbortController();
  private stopped = false;
  private slots: Promise<void>[] = [];
  /** lastDeliveryMs: 0 until the first attempt; shown as an ISO time only when asked (progress). */
  readonly stats = { delivered: 0, failedAttempts: 0, dead: 0, lastDeliveryMs: 0, lastError: '' };
  /** Health: the last attempt's outcome and the failed attempts since the last success. */
  private lastOk: boolean | undefined;
  private failuresInRow = 0;

  constructor(
    readonly listener: ListenerRecord,
    readonly queue: string,
    private readonly sender: Sender,
    readonly consumer: Consumer,
    private readonly hooks: WorkerHooks,
    private readonly log: Logger,
    /** Open deliveries left by the previous daemon (for health only: the consumer resumes them). */
    open: DeliveryRecord[] = [],
    /** The listener's rate limit and liveness, shared with its other workers. */
    private readonly gate: Gate = new Gate(listener),
  ) {
    this.listenerId = listener.id;
    for (const record of open) if (record.queue === queue) this.resumeHealth(record);
  }

  /**
   * A delivery left failing by the previous daemon: its failures in a row
   * count from the start, or after a restart a listener failing for hours
   * would look healthy until its next attempt (which may be minutes away).
   */
  private resumeHealth(record: DeliveryRecord): void {
    let failures = 0;
    for (let i = record.attempts.length - 1; i >= 0 && !record.attempts[i]!.ok; i--) failures++;
    if (failures <= this.failuresInRow) return;
    this.failuresInRow = failures;
    this.lastOk = false;
    this.stats.lastError = record.attempts[record.attempts.length - 1]!.error ?? 'failed';
  }

  start(): void {
    const n = Math.max(1, this.listener.concurrency);
    for (let i = 0; i < n; i++) this.slots.push(this.loop());
  }

  /** The listener's state changed (paused, resumed) or its receiver came back. */
  wake(): void {
    if (!this.active) this.running.abort();
    this.signal.wake();
  }

  /** Stops after in-flight attempts are aborted; nothing unsettled is acknowledged. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.running.abort();
    this.signal.wake();
    await Promise.allSettled(this.slots);
    await this.consumer.close();
  }

  progress(now = Date.now()): ListenerProgress {
    const c = this.consumer.progress(now);
    const p: ListenerProgress = {
      queue: this.queue,
      inFlight: c.inFlight,
      delivered: this.stats.delivered,
      failedAttempts: this.stats.failedAttempts,
      dead: this.stats.dead,
      pending: c.pending,
      lagMs: c.lagMs,
      ...this.health(c.nextRetryAt),
    };
    if (c.cursor !== undefined) p.cursor = c.cursor;
    if (this.stats.lastDeliveryMs) p.lastDeliveryAt = new Date(this.stats.lastDeliveryMs).toISOString();
    if (this.gate.throttled) p.throttled = true;
    if (this.gate.liveness !== undefined) p.liveness = this.gate.liveness;
    return p;
  }

  /** How the receiver has been doing: a success clears the failure streak and its error. */
  health(nextRetryAt = this.consumer.progress().nextRetryAt): ListenerHealth {
    const h: ListenerHealth = { consecutiveFailures: this.failuresInRow };
    if (this.lastOk !== undefined) h.lastOutcome = this.lastOk ? 'ok' : 'failed';
    if (this.failuresInRow > 0 && this.stats.lastError) h.lastError = this.stats.lastError;
    if (nextRetryAt !== undefined) h.nextAttemptAt = new Date(nextRetryAt).toISOString();
    return h;
  }

  private get active(): boolean {
    return this.listener.state === 'active';
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const version = this.signal.version;
      if (!this.active) {
        await this.signal.wait(version);
        continue;
      }
      if (this.running.signal.aborted) this.running = new AbortController();
      const signal = this.running.signal;
      const delivery = await this.consumer.next(signal);
      if (delivery) await this.deliver(delivery);
      // Nothing, and not because the listener paused or stopped: the consumer is closed.
      else if (!signal.aborted) return;
    }
  }

  private async deliver(delivery: Delivery): Promise<void> {
    const { message, record } = delivery;
    if (this.stopped || !this.active) {
      this.consumer.release(delivery);
      return;
    }
    const attemptNo = attemptNumber(record);
    if (message === undefined) {
      this.damaged(delivery, { attempt: attemptNo, at: new Date().toISOString(), durationMs: 0, ok: false, error: DAMAGED });
      return;
    }
    if (!this.gate.open) {
      await this.gate.ready(this.abort.signal);
      // Paused or stopped while it waited for its turn: not an attempt.
      if (this.stopped || !this.active) {
        this.consumer.release(delivery);
        return;
      }
    }
    const started = Date.now();
    const result = await this.sender.send(message, attemptNo, this.abort.signal);
    if (!result.ok && !result.interrupted && !this.stopped && !(await this.gate.alive(this.abort.signal))) {
      // The receiver is down by its own liveness URL: not an attempt. It goes out again
      // once the URL answers 2xx (the gate holds every send until then), so nothing goes dead.
      this.stats.lastError = `receiver not alive (${this.listener.livenessUrl} did not answer 2xx) after: ${result.error ?? 'failed'}`;
      this.consumer.release(delivery);
      return;
    }
    const decision = decide(result, record, this.listener);
    if (decision.outcome === 'release') {
      // The receiver went away mid-delivery: not an attempt; send it again when it is back.
      this.consumer.release(delivery);
      if (!this.stopped) await this.signal.wait(this.signal.version);
      return;
    }
    if (this.stopped && !result.ok) {
      // Aborted by shutdown: not the receiver's fault, not counted.
      this.consumer.release(delivery);
      return;
    }
    const ended = Date.now();
    const attempt = toAttempt(result, attemptNo, started, ended);
    this.lastOk = result.ok;
    this.failuresInRow = result.ok ? 0 : this.failuresInRow + 1;
    this.stats.lastDeliveryMs = ended;
    this.hooks.attempted?.(this, message.id, attempt);
    if (!result.ok) {
      this.stats.failedAttempts++;
      this.stats.lastError = result.error ?? 'failed';
    }
    switch (decision.outcome) {
      case 'delivered':
        this.stats.delivered++;
        this.consumer.delivered(delivery, attempt);
        this.hooks.settled(this, message.id, 'delivered', attempt);
        return;
      case 'gone':
        // Kept to be sent first when the listener is enabled again.
        this.consumer.retry(delivery, attempt, 0);
        this.hooks.gone(this, `the receiver answered 410 Gone at ${attempt.at}`);
        return;
      case 'dead':
        this.stats.dead++;
        this.log.warn('delivery dead', { listener: this.listener.name ?? this.listenerId, message: message.id, attempts: attemptNo });
        this.consumer.dead(delivery, attempt);
        this.hooks.settled(this, message.id, 'dead', attempt);
        return;
      case 'retry':
        this.hooks.retrying?.(this, message.id, attempt);
        this.consumer.retry(delivery, attempt, decision.delayMs);
        return;
    }
  }

  /**
   * A stored message that failed its checksum cannot be sent as published:
   * it is recorded dead at once, with the reason, and never delivered.
   */
  private damaged(delivery: Delivery, attempt: Attempt): void {
    const messageId = delivery.record.messageId;
    this.stats.dead++;
    this.stats.lastError = DAMAGED;
    this.log.error('delivery dead: stored message damaged', { listener: this.listener.name ?? this.listenerId, message: messageId });
    this.consumer.dead(delivery, attempt);
    this.hooks.settled(this, messageId, 'dead', attempt);
  }
}

function toAttempt(result: SendResult, attempt: number, started: number, ended: number): Attempt {
  const out: Attempt = { attempt, at: new Date(started).toISOString(), durationMs: ended - started, ok: result.ok };
  if (result.status !== undefined) out.status = result.status;
  if (result.exitCode !== undefined) out.exitCode = result.exitCode;
  if (result.signal !== undefined) out.signal = result.signal;
  if (result.error !== undefined) out.error = result.error;
  if (result.output) out.output = result.output;
  return out;
}
