/**
 * Closed-loop publish load: `connections` sockets, each with `depth`
 * publishes pipelined on it; every slot sends its next publish as soon as
 * the previous one is acknowledged, so exactly connections × depth
 * publishes are in flight at any moment. Only completions inside the
 * measuring window (after a warm-up) count.
 */
import type { Measured } from './lib.js';
import { Samples } from './lib.js';

export interface Publisher {
  publish(queue: string, messages: { data: string }[]): Promise<unknown>;
  close(): Promise<void> | void;
}

export interface LoadOptions {
  open: () => Promise<Publisher>;
  queue: string;
  connections: number;
  depth: number;
  warmupMs: number;
  durationMs: number;
  payloads: string[];
  /** CPU seconds the daemon has used so far (for its utilisation during the window). */
  daemonCpuSeconds?: () => number;
}

export async function runLoad(options: LoadOptions): Promise<Measured> {
  const { connections, depth, payloads, queue } = options;
  const publishers: Publisher[] = [];
  for (let i = 0; i < connections; i++) publishers.push(await options.open());
  const latencies = new Samples();
  let completed = 0;
  let next = 0;
  const windowStart = performance.now() + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  let cpu0: NodeJS.CpuUsage | undefined;
  let daemon0 = 0;
  const startWindow = setTimeout(() => {
    cpu0 = process.cpuUsage();
    daemon0 = options.daemonCpuSeconds?.() ?? 0;
  }, options.warmupMs);
  let cpu: Measured['cpu'];
  const closeWindow = () => {
    if (cpu !== undefined || cpu0 === undefined) return;
    const used = process.cpuUsage(cpu0);
    cpu = { client: (used.user + used.system) / 1e6 / (options.durationMs / 1000) };
    if (options.daemonCpuSeconds) cpu.daemon = (options.daemonCpuSeconds() - daemon0) / (options.durationMs / 1000);
  };
  const endWindow = setTimeout(closeWindow, options.warmupMs + options.durationMs);

  const slot = async (publisher: Publisher) => {
    for (;;) {
      const sent = performance.now();
      if (sent >= windowEnd) return;
      await publisher.publish(queue, [{ data: payloads[next++ % payloads.length]! }]);
      const acked = performance.now();
      if (acked >= windowStart && acked < windowEnd) completed++;
      if (sent >= windowStart && acked < windowEnd) latencies.push(acked - sent);
    }
  };
  try {
    const slots: Promise<void>[] = [];
    for (const publisher of publishers) for (let d = 0; d < depth; d++) slots.push(slot(publisher));
    await Promise.all(slots);
  } finally {
    clearTimeout(startWindow);
    clearTimeout(endWindow);
    closeWindow();
    await Promise.all(publishers.map((p) => p.close()));
  }
  const seconds = options.durationMs / 1000;
  const result: Measured = { rate: completed / seconds, messages: completed, seconds, latencies: latencies.values().slice() };
  if (cpu) result.cpu = cpu;
  return result;
}
