/**
 * The HTTP API (issue 12): publish over HTTP with keep-alive at 1 and 64 in
 * flight, against socket publish through the library, and against a minimal
 * node:http server (http-minimal-server.mjs, its own process) that does the
 * same synced, group-committed LevelDB write with no routing, validation or
 * tokens. Then the SSE latency from publish to event at 1,000 messages/s.
 * Cases run in interleaved rounds (lib.ts inRounds).
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'undici';
import { connect } from '../../src/index.js';
import { BenchDaemon, ROOT } from './daemon.js';
import type { Publisher } from './load.js';
import { runLoad } from './load.js';
import type { Section, SectionContext, SectionResult } from './lib.js';
import { Samples, check, fmtMs, fmtPct, fmtRate, fmtRatio, inRounds, log, scaled, sleep, summarize } from './lib.js';

const ROUNDS = scaled(3, 1);
const WARMUP_MS = scaled(500, 200);
const DURATION_MS = scaled(2000, 500);
const SSE_RATE = 1_000;
const SSE_MS = scaled(5_000, 1_000);

/** One keep-alive connection per publisher: HTTP/1.1 has one request in flight per connection. */
function httpPublisher(origin: string, path: string, token?: string): () => Promise<Publisher> {
  return async () => {
    const client = new Client(origin, { pipelining: 1, keepAliveTimeout: 10_000 });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    return {
      publish: async (_queue, messages) => {
        const res = await client.request({ method: 'POST', path, headers, body: JSON.stringify(messages[0]) });
        const text = await res.body.text();
        if (res.statusCode !== 201) throw new Error(`HTTP ${res.statusCode}: ${text}`);
      },
      close: () => client.close(),
    };
  };
}

function libraryPublisher(home: string): () => Promise<Publisher> {
  return async () => {
    const client = await connect({ home, autoStart: false });
    return { publish: (queue, messages) => client.publish(queue, messages), close: () => client.close() };
  };
}

async function minimalServer(ctx: SectionContext): Promise<string> {
  const child = fork(join(ROOT, 'test', 'bench', 'http-minimal-server.mjs'), [join(ctx.root, 'minimal-db')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  ctx.cleanup.add(kill, kill);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`minimal server exited with ${String(code)}`)));
    child.once('message', (m: { type: string; port: number }) => m.type === 'listening' && resolve(m.port));
  });
  return `http://127.0.0.1:${port}`;
}

/** Publishes at `rate` per second for `ms` through the library and times each message from publish to its SSE event. */
async function sseLatency(home: string, url: string, token: string): Promise<Samples> {
  const sent = new Map<string, number>();
  const latencies = new Samples();
  const events = new Client(url);
  const { body } = await events.request({ method: 'GET', path: '/v1/queues/sse/events', headers: { authorization: `Bearer ${token}` } });
  let buffer = '';
  body.setEncoding('utf8');
  body.on('data', (chunk: string) => {
    const now = performance.now();
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data === undefined) continue;
      const seq = (JSON.parse(data) as { data: string }).data;
      const at = sent.get(seq);
      if (at !== undefined) latencies.push(now - at);
    }
  });
  body.on('error', () => undefined);
  await sleep(200);
  const client = await connect({ home, autoStart: false });
  const total = Math.round((SSE_RATE * SSE_MS) / 1000);
  const start = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    // Paced: message i goes out at start + i ms (1,000/s), a tick of timers at a time.
    const due = start + (i * 1000) / SSE_RATE;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const seq = String(i);
    sent.set(seq, performance.now());
    inFlight.push(client.publish('sse', [{ data: seq }]));
  }
  await Promise.all(inFlight);
  const deadline = Date.now() + 10_000;
  while (latencies.length < total && Date.now() < deadline) await sleep(20);
  await client.close();
  body.destroy();
  await events.destroy();
  if (latencies.length < total) log(`SSE: ${latencies.length} of ${total} events arrived`);
  return latencies;
}

export const httpSection: Section = {
  name: 'http',
  async run(ctx: SectionContext): Promise<SectionResult> {
    const daemon = new BenchDaemon(join(ctx.root, 'http-home'), ctx.cleanup, { DISCUE_HTTP_LISTEN: '127.0.0.1:0' });
    await daemon.start();
    const admin = await connect({ home: daemon.home, autoStart: false });
    const url = (await admin.request('daemon.status', {})).http!;
    const { token } = await admin.request('token.create', { name: 'bench', scopes: ['admin'] });
    await admin.request('queue.create', { name: 'q' });
    await admin.request('queue.create', { name: 'sse' });
    await admin.close();
    const minimal = await minimalServer(ctx);
    const shapes = [
      { inFlight: 1, http: { connections: 1, depth: 1 }, socket: { connections: 1, depth: 1 } },
      { inFlight: 64, http: { connections: 64, depth: 1 }, socket: { connections: 4, depth: 16 } },
    ];
    const cases = shapes.flatMap(({ inFlight, http, socket }) => {
      const common = { queue: 'q', warmupMs: WARMUP_MS, durationMs: DURATION_MS, payloads: ctx.payloads };
      return [
        {
          key: `http${inFlight}`,
          label: `HTTP publish, ${inFlight} in flight`,
          run: () => runLoad({ ...common, ...http, open: httpPublisher(url, '/v1/queues/q/messages', token), daemonCpuSeconds: () => daemon.cpuSeconds() }),
        },
        {
          key: `socket${inFlight}`,
          label: `socket publish (library), ${inFlight} in flight`,
          run: () => runLoad({ ...common, ...socket, open: libraryPublisher(daemon.home), daemonCpuSeconds: () => daemon.cpuSeconds() }),
        },
        {
          key: `minimal${inFlight}`,
          label: `minimal node:http + LevelDB, ${inFlight} in flight`,
          run: () => runLoad({ ...common, ...http, open: httpPublisher(minimal, '/') }),
        },
      ];
    });
    const results = await inRounds(ROUNDS, cases);
    ctx.report({
      title: 'HTTP API: durable publish, one 200-byte message per request',
      columns: ['client', 'in flight', 'msg/s', 'p50 ms', 'p99 ms', 'daemon cpu', 'rounds'],
      rows: shapes.flatMap(({ inFlight }) =>
        (['http', 'socket', 'minimal'] as const).map((kind) => {
          const a = results[`${kind}${inFlight}`]!;
          const label = { http: 'HTTP API (keep-alive)', socket: 'socket, library', minimal: 'minimal node:http + LevelDB' }[kind];
          return [label, String(inFlight), fmtRate(a.rate), fmtMs(a.latencyMs.p50), fmtMs(a.latencyMs.p99), a.cpu?.daemon === undefined ? '-' : fmtPct(a.cpu.daemon), a.rounds.map(fmtRate).join(' ')];
        }),
      ),
      notes: [
        'HTTP: one keep-alive connection per request in flight (undici Client, no pipelining); socket: 1x1 and 4 connections x 16 pipelined.',
        'minimal: its own process; node:http, JSON.parse, a synced (sync: true), group-committed, chained LevelDB batch as discue writes; no routing/validation/tokens/checksums. Same durability: both answer once the fsync of the batch holding the message returns.',
      ],
    });
    log('SSE latency');
    const sse = summarize((await sseLatency(daemon.home, url, token)).values());
    ctx.report({
      title: `HTTP API: SSE latency, publish (library) to event, ${SSE_RATE} messages/s for ${SSE_MS / 1000} s`,
      columns: ['events', 'p50 ms', 'p99 ms', 'max ms'],
      rows: [[String(sse.count), fmtMs(sse.p50), fmtMs(sse.p99), fmtMs(sse.max)]],
    });
    const ratio = results.http64!.rate / results.minimal64!.rate;
    return {
      targets: [check('HTTP publish at 64 in flight ≥ 0.8x a minimal node:http + LevelDB server', `${fmtRatio(ratio)}`, ratio, 0.8)],
      data: { publish: results, sse },
    };
  },
};
