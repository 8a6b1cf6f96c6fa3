/**
 * The worker's hand-off between reading the queue from disk and taking fresh
 * messages from appends, driven step by step with a store whose reads finish
 * when the test says so. The interleavings here are the ones a busy daemon
 * produces now and then; end-to-end tests can only hope to hit them.
 */
import { describe, expect, it } from 'vitest';
import { Worker } from '../../src/delivery/worker.js';
import type { SendResult, Sender } from '../../src/delivery/types.js';
import type { Envelope } from '../../src/protocol/messages.js';
import type { ListenerRecord } from '../../src/store/deliveries.js';
import type { Store } from '../../src/store/types.js';
import { createLogger } from '../../src/daemon/log.js';

const QUEUE = 'q';

function envelope(n: number): Envelope {
  return { id: `01AAAAAAAAAAAAAAAAAAAAA${String(n).padStart(3, '0')}`, queue: QUEUE, data: `m${n}`, publishedAt: new Date(0).toISOString() };
}

/** A queue whose reads take a snapshot at once and answer only when released. */
class FakeQueue {
  readonly messages: Envelope[] = [];
  readonly reads: { afterId: string | undefined; snapshot: Envelope[]; release: () => void }[] = [];
  autoRelease = true;

  store(): Store {
    const fake = {
      listMessages: (_queue: string, options: { afterId?: string; limit: number }) => {
        const snapshot = this.messages.filter((m) => options.afterId === undefined || m.id > options.afterId).slice(0, options.limit);
        return new Promise<Envelope[]>((resolve) => {
          const read = { afterId: options.afterId, snapshot, release: () => resolve(snapshot) };
          this.reads.push(read);
          if (this.autoRelease) read.release();
        });
      },
      getMessage: async (_queue: string, id: string) => this.messages.find((m) => m.id === id)!,
      readMessages: async (queue: string, options: { afterId?: string; limit: number }) => ({
        messages: await fake.listMessages(queue, options),
        damaged: [],
      }),
    };
    return fake as unknown as Store;
  }
}

/** Records what is sent and lets the test finish each send. */
class ManualSender implements Sender {
  readonly sent: string[] = [];
  private pending: ((r: SendResult) => void)[] = [];
  send(message: Envelope): Promise<SendResult> {
    this.sent.push(message.data);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  /** Finishes the oldest send in flight. */
  complete(ok = true): void {
    const resolve = this.pending.shift();
    if (!resolve) throw new Error('nothing in flight');
    resolve({ ok });
  }
  get inFlight(): number {
    return this.pending.length;
  }
}

const listener: ListenerRecord = {
  id: 'l_test',
  kind: 'http',
  queues: [QUEUE],
  timeoutMs: 1000,
  maxAttempts: 1,
  retryDelayMs: 1,
  concurrency: 1,
  state: 'active',
  createdAt: new Date(0).toISOString(),
};

const tick = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

function setup() {
  const queue = new FakeQueue();
  const sender = new ManualSender();
  const hooks = { settled: () => undefined, gone: () => undefined };
  const worker = new Worker({ ...listener }, QUEUE, sender, queue.store(), undefined, hooks, createLogger(() => undefined), { cursor: undefined });
  const append = (...ns: number[]) => {
    const batch = ns.map(envelope);
    queue.messages.push(...batch);
    worker.offer(batch);
  };
  return { queue, sender, worker, append };
}

describe('Worker: reading vs fresh appends', () => {
  it('does not skip a message appended while a read of the queue was in flight', async () => {
    const { queue, sender, worker, append } = setup();
    worker.start();
    await tick();
    // Caught up on an empty queue: appends are taken without a read.
    append(1, 2);
    await tick();
    expect(sender.sent).toEqual(['m1']);
    append(3); // m2 still buffered: the worker is behind, m3 will come from a read.
    sender.complete();
    await tick();
    expect(sender.sent).toEqual(['m1', 'm2']);

    queue.autoRelease = false;
    const readsBefore = queue.reads.length;
    sender.complete();
    await tick();
    // The worker reads the disk for m3; m4 is appended while that read is in flight.
    expect(queue.reads.length).toBe(readsBefore + 1);
    const read = queue.reads[queue.reads.length - 1]!;
    expect(read.snapshot.map((m) => m.data)).toEqual(['m3']);
    append(4);
    read.release();
    queue.autoRelease = true;
    await tick();
    expect(sender.sent).toEqual(['m1', 'm2', 'm3']);
    // Then m5 comes while nothing is buffered.
    append(5);
    for (let i = 0; i < 3; i++) {
      if (sender.inFlight > 0) sender.complete();
      await tick();
    }
    expect(sender.sent).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    await worker.stop().catch(() => undefined);
  });

  it('delivers in order and exactly once when appends race reads at every step', async () => {
    const { queue, sender, worker, append } = setup();
    worker.start();
    await tick();
    let n = 0;
    for (let round = 0; round < 60; round++) {
      // Alternate: hold reads or not, append 0-3 messages, finish a send.
      queue.autoRelease = round % 3 !== 0;
      const k = round % 4;
      append(...Array.from({ length: k }, () => ++n));
      await tick(3);
      for (const r of queue.reads) r.release();
      if (sender.inFlight > 0) sender.complete();
      await tick(3);
    }
    queue.autoRelease = true;
    for (const r of queue.reads) r.release();
    for (let i = 0; i < 200 && sender.sent.length < n; i++) {
      if (sender.inFlight > 0) sender.complete();
      await tick(3);
    }
    expect(sender.sent).toEqual(Array.from({ length: n }, (_, i) => `m${i + 1}`));
    if (sender.inFlight > 0) sender.complete();
    await worker.stop().catch(() => undefined);
  });
});
