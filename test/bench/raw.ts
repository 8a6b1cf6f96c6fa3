/**
 * The limits: classic-level used directly, in this process, on the same
 * disk as the daemon's data. What discue adds (socket, JSON, envelopes,
 * counters) is measured against these.
 */
import { ClassicLevel } from 'classic-level';
import { rmSync } from 'node:fs';
import type { Measured } from './lib.js';
import { Samples } from './lib.js';

/** Keys shaped like discue's message keys (m!<queue id>!<message id>), in order. */
function key(n: number): string {
  return 'm!01BENCHQUEUE0000000000000!' + String(n).padStart(26, '0');
}

export class RawLevel {
  private readonly db: ClassicLevel<string, string>;
  private n = 0;

  private constructor(
    private readonly location: string,
    private readonly payloads: string[],
  ) {
    this.db = new ClassicLevel<string, string>(location, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  }

  /** A fresh database at `location` (removed again by close()). */
  static async open(location: string, payloads: string[]): Promise<RawLevel> {
    rmSync(location, { recursive: true, force: true });
    const raw = new RawLevel(location, payloads);
    await raw.db.open();
    return raw;
  }

  async close(): Promise<void> {
    if (this.db.status === 'open') await this.db.close();
    rmSync(this.location, { recursive: true, force: true });
  }

  /** One `db.put(k, v, { sync: true })` at a time: one fsync per message. Latency per put. */
  async singlePuts(warmupMs: number, durationMs: number): Promise<Measured> {
    const { db, payloads } = this;
    const warmEnd = performance.now() + warmupMs;
    while (performance.now() < warmEnd) await db.put(key(this.n), payloads[this.n++ % payloads.length]!, { sync: true });
    const latencies = new Samples();
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const end = start + durationMs;
    let now = start;
    while (now < end) {
      const t = now;
      await db.put(key(this.n), payloads[this.n++ % payloads.length]!, { sync: true });
      now = performance.now();
      latencies.push(now - t);
    }
    return this.result(latencies, latencies.length, start, now, cpu0);
  }

  /** Synced batches of `size` puts, one after another: the throughput ceiling. Latency per batch. */
  async batches(size: number, warmupMs: number, durationMs: number): Promise<Measured> {
    const { db, payloads } = this;
    const batch = () => {
      const ops = new Array<{ type: 'put'; key: string; value: string }>(size);
      for (let i = 0; i < size; i++) ops[i] = { type: 'put', key: key(this.n), value: payloads[this.n++ % payloads.length]! };
      return ops;
    };
    const warmEnd = performance.now() + warmupMs;
    while (performance.now() < warmEnd) await db.batch(batch(), { sync: true });
    const latencies = new Samples();
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const end = start + durationMs;
    let now = start;
    while (now < end) {
      const ops = batch();
      const t = performance.now();
      await db.batch(ops, { sync: true });
      now = performance.now();
      latencies.push(now - t);
    }
    return this.result(latencies, latencies.length * size, start, now, cpu0);
  }

  /**
   * The same synced batches through classic-level's chained batch
   * (db.batch().put()...write()). It skips abstract-level's per-op clone and
   * checks and the binding's per-op property reads, so it is several times
   * cheaper on the main thread than db.batch(array): the real ceiling.
   */
  async chainedBatches(size: number, warmupMs: number, durationMs: number): Promise<Measured> {
    const { db, payloads } = this;
    const write = () => {
      const batch = db.batch();
      for (let i = 0; i < size; i++) batch.put(key(this.n), payloads[this.n++ % payloads.length]!);
      return batch.write({ sync: true });
    };
    const warmEnd = performance.now() + warmupMs;
    while (performance.now() < warmEnd) await write();
    const latencies = new Samples();
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const end = start + durationMs;
    let now = start;
    while (now < end) {
      const t = now;
      await write();
      now = performance.now();
      latencies.push(now - t);
    }
    return this.result(latencies, latencies.length * size, start, now, cpu0);
  }

  private result(latencies: Samples, messages: number, start: number, end: number, cpu0: NodeJS.CpuUsage): Measured {
    const seconds = (end - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      rate: messages / seconds,
      messages,
      seconds,
      latencies: latencies.values().slice(),
      cpu: { client: (cpu.user + cpu.system) / 1e6 / seconds },
    };
  }
}
