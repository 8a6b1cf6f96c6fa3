/**
 * The LevelDB consumer's hand-off between reading the queue from disk and
 * taking fresh messages from appends, driven step by step through a worker
 * with a source whose reads finish when the test says so. The interleavings
 * here are the ones a busy daemon produces now and then; end-to-end tests
 * can only hope to hit them.
 */
import { describe, expect, it } from 'vitest';
import { Appended } from '../../src/backend/level/appended.js';
import { LevelConsumer, MAX_BUFFER } from '../../src/backend/level/consumer.js';
import type { ConsumerSource } from '../../src/backend/level/consumer.js';
import { Worker } from '../../src/delivery/worker.js';
import type { SendResult, Sender } from '../../src/delivery/types.js';
import type { Envelope } from '../../src/protocol/wire.js';
import type { ListenerRecord } from '../../src/backend/types.js';
import { createLogger } from '../../src/observe/log.js';

const QUEUE = 'q';

/** Message n is named n.(n % 4), but every tenth has no name (filters never take it). */
function envelope(n: number): Envelope {
  const m: Envelope = { id: `01AAAAAAAAAAAAAAAAAA${String(n).padStart(6, '0')}`, queue: QUEUE, data: `m${n}`, publishedAt: new Date(0).toISOString() };
  if (n % 10 !== 0) m.name = nameOf(n);
  return m;
}

const nameOf = (n: number) => `n.${n % 4}`;

/** A queue whose reads take a snapshot at once and answer only when released. */
class FakeQueue {
  readonly messages: Envelope[] = [];
  readonly reads: { afterId: string | undefined; snapshot: Envelope[]; release: () => void }[] = [];
  autoRelease = true;
  /** Backlog counts (see LevelConsumer.countBacklog), answered when released. */
  readonly counts: { release: () => void }[] = [];
  autoCount = true;

  source(): ConsumerSource {
    const fake = {
      listMessages: (_queue: string, options: { afterId?: string; limit: number }) => {
        const snapshot = this.messages.filter((m) => options.afterId === undefined || m.id > options.afterId).slice(0, options.limit);
        return new Promise<Envelope[]>((resolve) => {
          const read = { afterId: options.afterId, snapshot, release: () => resolve(snapshot) };
          this.reads.push(read);
          if (this.autoRelease) read.release();
        });
      },
      // The snapshot is taken on release, as the real store takes it once it holds the deletion lock.
      countMessages: (_queue: string, options: { afterId?: string }) => {
        return new Promise<{ count: number; lastId: string | undefined }>((resolve) => {
          const count = {
            release: () => {
              const after = this.messages.filter((m) => options.afterId === undefined || m.id > options.afterId);
              resolve({ count: after.length, lastId: after[after.length - 1]?.id });
            },
          };
          this.counts.push(count);
          if (this.autoCount) count.release();
        });
      },
      getMessage: async (_queue: string, id: string) => this.messages.find((m) => m.id === id)!,
      readMessages: async (queue: string, options: { afterId?: string; limit: number }) => ({
        messages: await fake.listMessages(queue, options),
        damaged: [],
      }),
    };
    return fake as unknown as ConsumerSource;
  }
}

/** Records what is sent and lets the test finish each send. */
class ManualSender implements Sender {
  readonly sent: string[] = [];
  private pending: ((r: SendResult) => void)[] = [];
  send(message: Envelope, _attempt: number, signal: AbortSignal): Promise<SendResult> {
    this.sent.push(message.data);
    return new Promise((resolve) => {
      // Stopping the worker aborts what is in flight. The listener goes when the send ends: the
      // worker's one signal would otherwise collect thousands, and adding to an EventTarget
      // checks every listener already there (most of this file's time was spent there).
      const onAbort = () => resolve({ ok: false, interrupted: true });
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending.push((result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      });
    });
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

function setup(options: { concurrency?: number; backlog?: number; autoCount?: boolean; filters?: string[] } = {}) {
  const queue = new FakeQueue();
  queue.autoCount = options.autoCount ?? true;
  for (let n = 1; n <= (options.backlog ?? 0); n++) queue.messages.push(envelope(n));
  const sender = new ManualSender();
  const hooks = { settled: () => undefined, gone: () => undefined };
  const record = { ...listener, concurrency: options.concurrency ?? 1 };
  const consumer = new LevelConsumer(record, QUEUE, record.concurrency, queue.source(), undefined, undefined, undefined, undefined, options.filters);
  const worker = new Worker(record, QUEUE, sender, consumer, hooks, createLogger(() => undefined));
  // What the store does after each durable append.
  const append = (...ns: number[]) => {
    const batch = ns.map(envelope);
    queue.messages.push(...batch);
    consumer.offer(new Appended(batch));
  };
  const pending = () => consumer.progress().pending;
  return { queue, sender, worker, consumer, append, pending };
}

/** A small deterministic PRNG (mulberry32): a failing interleaving can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Worker: reading vs fresh appends', () => {
  it('does not skip a message appended while a read of the queue was in flight', async () => {
    const { queue, sender, worker, append } = setup({ backlog: 3 });
    queue.autoRelease = false;
    worker.start();
    await tick();
    // The worker reads the backlog m1..m3 from disk; m4 is appended while that read is in flight.
    expect(queue.reads).toHaveLength(1);
    const read = queue.reads[0]!;
    expect(read.snapshot.map((m) => m.data)).toEqual(['m1', 'm2', 'm3']);
    append(4);
    read.release();
    queue.autoRelease = true;
    await tick();
    expect(sender.sent).toEqual(['m1']);
    for (let i = 0; i < 3; i++) {
      sender.complete();
      await tick();
    }
    expect(sender.sent).toEqual(['m1', 'm2', 'm3', 'm4']);
    // Then m5 comes while nothing is buffered.
    append(5);
    sender.complete();
    await tick();
    expect(sender.sent).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    sender.complete();
    await worker.stop();
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

describe('Worker: live delivery without disk reads', () => {
  it('reads the disk no more while caught up, however appends and sends interleave', async () => {
    const { queue, sender, worker, append, pending } = setup();
    worker.start();
    await tick();
    const readsAtStart = queue.reads.length;
    let n = 0;
    for (let round = 0; round < 300; round++) {
      // Appends land during deliveries (the case that used to force a read each time).
      append(++n);
      if (round % 3 === 0) append(++n, ++n);
      if (sender.inFlight > 0) sender.complete();
      await tick(2);
    }
    for (let i = 0; i < 2000 && sender.sent.length < n; i++) {
      if (sender.inFlight > 0) sender.complete();
      await tick(2);
    }
    expect(sender.sent).toEqual(Array.from({ length: n }, (_, i) => `m${i + 1}`));
    expect(queue.reads.length - readsAtStart).toBe(0);
    expect(pending()).toBe(1); // the last one, in flight
    sender.complete();
    await tick();
    expect(pending()).toBe(0);
    await worker.stop();
  });

  it('keeps at most MAX_BUFFER offered messages and reads the rest from disk', async () => {
    const { queue, sender, worker, append } = setup();
    worker.start();
    await tick();
    const total = MAX_BUFFER + 500;
    append(...Array.from({ length: total }, (_, i) => i + 1));
    await tick();
    expect(queue.reads.length).toBe(1); // only the first read of the empty queue
    for (let i = 0; i < total * 2 && sender.sent.length < total; i++) {
      if (sender.inFlight > 0) sender.complete();
      await tick(1);
    }
    sender.complete();
    expect(sender.sent).toEqual(Array.from({ length: total }, (_, i) => `m${i + 1}`));
    expect(queue.reads.length).toBeGreaterThan(1);
    await worker.stop();
  });

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`delivers every message once, in order, under random races of appends, reads and sends (seed ${seed})`, async () => {
      const random = prng(seed);
      const concurrency = seed % 2 === 0 ? 1 : 3;
      const { queue, sender, worker, append, pending } = setup({ concurrency, backlog: Math.floor(random() * 200) });
      let n = queue.messages.length;
      worker.start();
      for (let round = 0; round < 400; round++) {
        queue.autoRelease = random() < 0.5;
        const r = random();
        // Mostly single appends, now and then a burst beyond the buffer bound.
        const k = r < 0.02 ? MAX_BUFFER + Math.floor(random() * 300) : Math.floor(random() * 4);
        if (k > 0) append(...Array.from({ length: k }, () => ++n));
        await tick(Math.floor(random() * 3));
        for (const read of queue.reads) if (random() < 0.7) read.release();
        const sends = Math.floor(random() * 4);
        for (let i = 0; i < sends && sender.inFlight > 0; i++) sender.complete();
        await tick(Math.floor(random() * 3));
      }
      queue.autoRelease = true;
      for (let i = 0; i < 20_000 && sender.sent.length < n; i++) {
        for (const read of queue.reads) read.release();
        while (sender.inFlight > 0) sender.complete();
        await tick(1);
      }
      const expected = Array.from({ length: n }, (_, i) => `m${i + 1}`);
      if (concurrency === 1) expect(sender.sent).toEqual(expected);
      // With several in flight the sends interleave; still each exactly once.
      else expect([...sender.sent].sort()).toEqual([...expected].sort());
      while (sender.inFlight > 0) sender.complete();
      await tick();
      expect(pending()).toBe(0);
      await worker.stop();
    });
  }
});

describe('Worker: filters under races of appends, reads and sends', () => {
  // Literal names (looked up in each append's index, one or two lists merged) and a wildcard (each distinct name tested).
  const cases: { filters: string[]; takes: (n: number) => boolean }[] = [
    { filters: ['n.1'], takes: (n) => n % 10 !== 0 && n % 4 === 1 },
    { filters: ['n.3', 'n.0'], takes: (n) => n % 10 !== 0 && (n % 4 === 3 || n % 4 === 0) },
    { filters: ['*.2'], takes: (n) => n % 10 !== 0 && n % 4 === 2 },
    { filters: ['nothing.here'], takes: () => false },
  ];
  for (const [c, { filters, takes }] of cases.entries()) {
    for (const seed of [11, 12, 13]) {
      it(`sends what ${JSON.stringify(filters)} take, once and in order, and pending is what lies after the position (seed ${seed})`, async () => {
        const random = prng(seed * 10 + c);
        const concurrency = seed % 2 === 0 ? 1 : 3;
        const { queue, sender, worker, consumer, append, pending } = setup({ concurrency, backlog: Math.floor(random() * 300), filters });
        // The backlog is the stored messages after the position, whatever was skipped or is out.
        const after = () => {
          const position = consumer.progress().cursor;
          return queue.messages.filter((m) => position === undefined || m.id > position).length;
        };
        let n = queue.messages.length;
        worker.start();
        await tick();
        for (let round = 0; round < 300; round++) {
          queue.autoRelease = random() < 0.5;
          const r = random();
          const k = r < 0.03 ? MAX_BUFFER + Math.floor(random() * 2000) : Math.floor(random() * 30);
          if (k > 0) append(...Array.from({ length: k }, () => ++n));
          await tick(Math.floor(random() * 3));
          for (const read of queue.reads) if (random() < 0.7) read.release();
          const sends = Math.floor(random() * 4);
          for (let i = 0; i < sends && sender.inFlight > 0; i++) sender.complete();
          await tick(Math.floor(random() * 3));
          expect(pending()).toBe(after());
        }
        queue.autoRelease = true;
        const expected = Array.from({ length: n }, (_, i) => i + 1)
          .filter(takes)
          .map((i) => `m${i}`);
        for (let i = 0; i < 20_000 && (sender.sent.length < expected.length || pending() > 0); i++) {
          for (const read of queue.reads) read.release();
          while (sender.inFlight > 0) sender.complete();
          await tick(1);
        }
        if (concurrency === 1) expect(sender.sent).toEqual(expected);
        else expect([...sender.sent].sort()).toEqual([...expected].sort());
        expect(pending()).toBe(0);
        expect(consumer.progress().cursor).toBe(queue.messages[queue.messages.length - 1]!.id);
        await worker.stop();
      });
    }
  }
});

describe('Worker: the backlog count', () => {
  it('counts the backlog once at start and keeps it right through appends and settles made during the count', async () => {
    const { queue, sender, worker, consumer, append, pending } = setup({ backlog: 12_000, autoCount: false });
    worker.start();
    await tick();
    expect(queue.counts).toHaveLength(1);
    // While the count runs: two messages are sent and settled, three appended.
    sender.complete();
    await tick();
    sender.complete();
    await tick();
    append(12_001, 12_002, 12_003);
    queue.counts[0]!.release();
    await tick();
    expect(sender.sent.slice(0, 3)).toEqual(['m1', 'm2', 'm3']);
    // 12,003 stored, 2 settled: m3 in flight and the rest.
    expect(pending()).toBe(12_001);
    sender.complete();
    await tick();
    expect(pending()).toBe(12_000);
    consumer.removed(queue.messages.slice(0, 10).map((m) => m.id)); // m1..m10: m4..m10 were not settled
    expect(pending()).toBe(12_000 - 7);
    await worker.stop();
  });

  it('does not count messages appended and removed while the count waited for its snapshot', async () => {
    const { queue, sender, worker, consumer, append, pending } = setup({ backlog: 2, autoCount: false });
    worker.start();
    await tick();
    append(3, 4);
    // Purged before the count gets to look (it waits for the store's deletion lock).
    const purged = queue.messages.splice(2, 2);
    consumer.removed(purged.map((m) => m.id));
    queue.counts[0]!.release();
    await tick();
    expect(pending()).toBe(2);
    for (let i = 0; i < 2; i++) {
      sender.complete();
      await tick();
    }
    expect(sender.sent).toEqual(['m1', 'm2']);
    expect(pending()).toBe(0);
    await worker.stop();
  });

  it('does not send messages removed from the queue while buffered, nor count them twice', async () => {
    const { queue, sender, worker, consumer, append, pending } = setup();
    worker.start();
    await tick();
    append(1, 2, 3, 4, 5);
    await tick();
    expect(sender.sent).toEqual(['m1']);
    expect(pending()).toBe(5);
    // A purge of m1..m4: m1 is in flight, m2..m4 buffered.
    consumer.removed(queue.messages.slice(0, 4).map((m) => m.id));
    queue.messages.splice(0, 4);
    expect(pending()).toBe(1);
    for (let i = 0; i < 5 && sender.inFlight > 0; i++) {
      sender.complete();
      await tick();
    }
    expect(sender.sent).toEqual(['m1', 'm5']);
    expect(pending()).toBe(0);
    await worker.stop();
  });
});
