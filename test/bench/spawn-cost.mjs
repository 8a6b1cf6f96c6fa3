// How long one command delivery holds the event loop of the process that
// delivers it: run by mix.ts in a fresh process with DISCUE_SPAWNER=inline
// (spawned on this thread, as the daemon did before the spawner) or unset
// (through the spawner process), after growing this process to `rssMb`
// (fork time grows with the forking process's memory).
// argv: <commands> <rssMb>   stdout: one JSON line
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { CommandSender } from '../../dist/delivery/command.js';

const [n, rssMb] = process.argv.slice(2).map(Number);
// Ballast touched page by page, so it is resident and in the page tables a fork copies.
const ballast = [];
while (process.memoryUsage().rss < rssMb * 1024 * 1024) {
  const b = Buffer.allocUnsafe(16 * 1024 * 1024);
  for (let i = 0; i < b.length; i += 4096) b[i] = 1;
  ballast.push(b);
}
const sender = new CommandSender({
  id: 'probe', kind: 'exec', queues: [], command: ['cat'], shell: false, timeoutMs: 30_000,
  maxAttempts: 1, retryDelayMs: 0, concurrency: 1, state: 'active', createdAt: new Date().toISOString(),
});
const envelope = (i) => ({ id: `0000000000000-${String(i).padStart(8, '0')}`, queue: 'q', publishedAt: new Date().toISOString(), data: 'x'.repeat(200) });
const signal = new AbortController().signal;
for (let i = 0; i < 10; i++) await sender.send(envelope(i), 1, signal);

async function deliverAll() {
  for (let i = 0; i < n; i++) {
    const r = await sender.send(envelope(i), 1, signal);
    if (!r.ok) throw new Error(`cat failed: ${r.error}`);
  }
}
// Two passes: the delay monitor's own 1 ms timer wakes the loop ~8 times per command, which
// would count as busy time of its own; so busy and CPU time are measured without it.
const elu0 = performance.eventLoopUtilization();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await deliverAll();
const wall = performance.now() - t0;
const elu = performance.eventLoopUtilization(elu0);
const cpu = process.cpuUsage(cpu0);
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
await deliverAll();
delay.disable();
console.log(JSON.stringify({
  commands: n,
  rssBytes: process.memoryUsage().rss,
  // Read here so the ballast stays reachable (and resident) to the end.
  ballastBytes: ballast.reduce((sum, b) => sum + b.length, 0),
  activeMsPerCommand: elu.active / n,
  cpuMsPerCommand: (cpu.user + cpu.system) / 1000 / n,
  wallMsPerCommand: wall / n,
  maxDelayMs: delay.max / 1e6,
  p99DelayMs: delay.percentile(99) / 1e6,
}));
process.exit(0);
