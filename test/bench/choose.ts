/**
 * Listeners that choose (issue 13): the cost of filtering. 100 HTTP
 * listeners on one queue, each filtering a different name, while the queue
 * receives 100 names at 5,000 msgs/s (each message matches one listener, and
 * 99 skip it), against the same 100 listeners on a queue each, taking the
 * same messages. Also the daemon's CPU per skipped message: the filtered
 * run's daemon CPU less the queue-per-listener run's, over the skips (both
 * make the same deliveries; the second pays for 100× the publish requests,
 * so the figure leans low).
 *
 * Both runs are bound by the daemon's CPU per delivery (the sink and the
 * publisher use a fraction of theirs), so a machine whose load changes
 * during the section moves the ratio more than filtering does: each setup
 * runs twice, interleaved A B B A, and the ratio is of their combined rates.
 */
import { join } from 'node:path';
import { connect } from '../../src/index.js';
import type { DiscueClient } from '../../src/index.js';
import { BenchDaemon } from './daemon.js';
import { Sink } from './delivery.js';
import type { Section, SectionContext, SectionResult } from './lib.js';
import { check, fmtRate, log, scaled, sleep } from './lib.js';

const LISTENERS = 100;
const RATE = 5_000;
const SECONDS = scaled(6, 2);
const TICK_MS = 200;
const DRAIN_TIMEOUT_MS = 120_000;

interface Run {
  what: string;
  deliveries: number;
  seconds: number;
  rate: number;
  cpuSeconds: number;
}

const wallMs = () => performance.timeOrigin + performance.now();

/** Publishes RATE msgs/s for SECONDS, message i named ev.(i % 100), to `queueOf(i)`, a batch per queue per tick. */
async function offer(client: DiscueClient, payloads: string[], queueOf: (i: number) => string): Promise<number> {
  const total = RATE * SECONDS;
  const perTick = (RATE * TICK_MS) / 1000;
  const start = performance.now();
  for (let sent = 0, tick = 0; sent < total; tick++) {
    const batches = new Map<string, { data: string; name: string }[]>();
    for (let k = 0; k < perTick && sent < total; k++, sent++) {
      const q = queueOf(sent);
      let batch = batches.get(q);
      if (!batch) batches.set(q, (batch = []));
      batch.push({ data: payloads[sent % payloads.length]!, name: `ev.${sent % LISTENERS}` });
    }
    await Promise.all([...batches].map(([q, b]) => client.publish(q, b)));
    const due = start + (tick + 1) * TICK_MS;
    if (due > performance.now()) await sleep(due - performance.now());
  }
  return total;
}

async function measure(
  ctx: SectionContext,
  sink: Sink,
  what: string,
  dir: string,
  setup: (client: DiscueClient) => Promise<(i: number) => string>,
  deliveriesPerMessage = 1,
): Promise<Run> {
  const daemon = new BenchDaemon(join(ctx.root, dir), ctx.cleanup);
  await daemon.start();
  const client = await connect({ home: daemon.home, autoStart: false });
  try {
    const queueOf = await setup(client);
    const total = RATE * SECONDS * deliveriesPerMessage;
    const { wait } = await sink.expect(total, DRAIN_TIMEOUT_MS);
    const cpu0 = daemon.cpuSeconds();
    const t0 = wallMs();
    await offer(client, ctx.payloads, queueOf);
    const ms = (await wait) - t0;
    const cpuSeconds = daemon.cpuSeconds() - cpu0;
    log(`choose: ${what}: ${total} deliveries in ${(ms / 1000).toFixed(2)} s, daemon CPU ${cpuSeconds.toFixed(2)} s`);
    return { what, deliveries: total, seconds: ms / 1000, rate: total / (ms / 1000), cpuSeconds };
  } finally {
    await client.close();
    await daemon.stop();
  }
}

/** Runs taken together: their deliveries over their time, and their mean daemon CPU. */
function combined(what: string, runs: Run[]): Run {
  const deliveries = runs.reduce((a, r) => a + r.deliveries, 0) / runs.length;
  const seconds = runs.reduce((a, r) => a + r.seconds, 0) / runs.length;
  const cpuSeconds = runs.reduce((a, r) => a + r.cpuSeconds, 0) / runs.length;
  return { what, deliveries, seconds, rate: deliveries / seconds, cpuSeconds };
}

export const chooseSection: Section = {
  name: 'choose',
  async run(ctx: SectionContext): Promise<SectionResult> {
    const sink = await Sink.start(ctx);
    const url = sink.url;
    const setups = {
      filtered: {
        what: `${LISTENERS} filtered listeners, 1 queue`,
        setup: async (client: DiscueClient) => {
          await client.request('queue.create', { name: 'all' });
          for (let i = 0; i < LISTENERS; i++) await client.request('listener.add', { kind: 'http', queues: ['all'], url, filters: [`ev.${i}`] });
          return () => 'all';
        },
      },
      separate: {
        what: `${LISTENERS} listeners, a queue each`,
        setup: async (client: DiscueClient) => {
          for (let i = 0; i < LISTENERS; i++) {
            await client.request('queue.create', { name: `q${i}` });
            await client.request('listener.add', { kind: 'http', queues: [`q${i}`], url });
          }
          return (i: number) => `q${i % LISTENERS}`;
        },
      },
    };
    log(`choose: ${LISTENERS} listeners filtering ${LISTENERS} names on one queue vs a queue each, ${RATE} msgs/s for ${SECONDS} s, runs A B B A`);
    const runs: Record<keyof typeof setups, Run[]> = { filtered: [], separate: [] };
    const inOrder: Run[] = [];
    for (const [n, which] of (['filtered', 'separate', 'separate', 'filtered'] as const).entries()) {
      const { what, setup } = setups[which];
      const run = await measure(ctx, sink, `${what} (${runs[which].length + 1})`, `d-${n}-${which}`, setup);
      runs[which].push(run);
      inOrder.push(run);
    }
    sink.stop();
    const filtered = combined(`${setups.filtered.what}, both runs`, runs.filtered);
    const separate = combined(`${setups.separate.what}, both runs`, runs.separate);

    const messages = RATE * SECONDS;
    const skips = messages * (LISTENERS - 1);
    const cpuPerSkipUs = ((filtered.cpuSeconds - separate.cpuSeconds) / skips) * 1e6;
    const ratio = filtered.rate / separate.rate;
    ctx.report({
      title: `Filtering: ${LISTENERS} listeners, ${LISTENERS} names, ${RATE.toLocaleString('en-US')} msgs/s offered for ${SECONDS} s`,
      columns: ['what', 'deliveries', 'seconds', 'deliveries/s', 'daemon CPU s'],
      rows: [...inOrder, filtered, separate].map((r) => [r.what, String(r.deliveries), r.seconds.toFixed(2), fmtRate(r.rate), r.cpuSeconds.toFixed(2)]),
      notes: [
        `Runs in the order listed (A B B A, so a load that drifts weighs on both alike); "both runs": their mean time and mean daemon CPU.`,
        `Each message matches one listener's filter (ev.N); timed from the first publish until the sink has every delivery; publishes in ${TICK_MS} ms ticks, one batch per queue.`,
        `CPU per skipped message: (filtered - a queue each) daemon CPU / ${skips.toLocaleString('en-US')} skips = ${cpuPerSkipUs.toFixed(2)} µs (the queue-per-listener run also pays 100x the publish requests: a low estimate).`,
      ],
    });
    return {
      targets: [
        check(
          `filtered (1 queue) >= 0.9x a queue per listener, at ${RATE} msgs/s`,
          `${fmtRate(filtered.rate)}/s vs ${fmtRate(separate.rate)}/s = ${ratio.toFixed(2)}x`,
          ratio,
          0.9,
        ),
        { target: '(context) daemon CPU per skipped message', measured: `${cpuPerSkipUs.toFixed(2)} µs`, met: undefined, value: cpuPerSkipUs },
      ],
      data: { settings: { listeners: LISTENERS, rate: RATE, seconds: SECONDS }, runs, filtered, separate, cpuPerSkipUs, ratio },
    };
  },
};
