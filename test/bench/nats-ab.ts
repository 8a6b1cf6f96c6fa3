/**
 * A/B of the daemon's NATS publish path (issue 11), interleaved on one
 * shared machine: two daemons (two builds of discue) on the same NATS
 * server(s), and the raw @nats-io/jetstream client, taking turns round by
 * round at 1 and 256 in flight.
 *   npx tsx test/bench/nats-ab.ts BIN_A BIN_B [rounds] [seconds] [replicas] [publish|http]
 * `http`: HTTP delivery of a 300-message backlog to 1 and 10 listeners instead.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { connect } from '../../src/index.js';
import { IdGenerator } from '../../src/protocol/ids.js';
import { natsServers } from '../helpers/nats.js';
import { discueEnv } from './daemon.js';
import { Cleanup } from './lib.js';
import { Sink, discueHttp } from './delivery.js';
import { fmtRate, inRounds, payloadPool, sleep } from './lib.js';
import type { Measured } from './lib.js';
import { runLoad } from './load.js';
import { answersHello } from './wire.js';

const [binA, binB] = [process.argv[2]!, process.argv[3]!];
const rounds = Number(process.argv[4] ?? 4);
const seconds = Number(process.argv[5] ?? 2);
const replicas = Number(process.argv[6] ?? 1);
const mode = process.argv[7] ?? 'publish';
const dir = mkdtempSync(join(tmpdir(), 'discue-natsab-'));
const servers = await natsServers(replicas === 1 ? 1 : 3, 60_000);
const payloads = payloadPool(200);
const children: ReturnType<typeof spawn>[] = [];
try {
  const homes: Record<string, string> = {};
  for (const [name, bin] of [['A', binA], ['B', binB]] as const) {
    const home = join(dir, name);
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const child = spawn(process.execPath, [bin, 'daemon', 'start', '--foreground'], {
      env: { ...discueEnv(home), DISCUE_STORE: servers.urls, DISCUE_STORE_REPLICAS: String(replicas) },
      stdio: 'ignore',
    });
    children.push(child);
    while (!(await answersHello(join(home, 'run', 'discue.sock')))) await sleep(20);
    const c = await connect({ home, autoStart: false });
    await c.request('queue.create', { name: `q${name}` });
    await c.close();
    homes[name] = home;
  }
  const nc0 = await natsConnect({ servers: servers.nodes[0]!.url });
  await (await jetstreamManager(nc0)).streams.add({ name: 'RAWAB', subjects: ['raw.ab'], storage: StorageType.File, num_replicas: replicas });
  await nc0.close();
  const cases: { key: string; label: string; run: () => Promise<Measured> }[] = [];
  for (const depth of [1, 256]) {
    for (const name of ['A', 'B']) {
      cases.push({
        key: `${name}${depth}`,
        label: `${name} ${depth}`,
        run: () =>
          runLoad({
            open: async () => {
              const cl = await connect({ home: homes[name]!, autoStart: false });
              return { publish: (q, m) => cl.publish(q, m), close: () => cl.close() };
            },
            queue: `q${name}`, connections: 1, depth, warmupMs: 300, durationMs: seconds * 1000, payloads,
          }),
      });
    }
    cases.push({
      key: `raw${depth}`,
      label: `raw ${depth}`,
      run: () =>
        runLoad({
          open: async () => {
            const nc = await natsConnect({ servers: servers.nodes[0]!.url });
            const js = jetstream(nc);
            const ids = new IdGenerator();
            return { publish: async (_q, m) => void (await js.publish('raw.ab', m[0]!.data, { msgID: ids.next() })), close: () => nc.close() };
          },
          queue: 'x', connections: 1, depth, warmupMs: 300, durationMs: seconds * 1000, payloads,
        }),
    });
  }
  if (mode === 'http') {
    cases.length = 0;
    const cleanup = new Cleanup();
    const ctx = { root: dir, cleanup, payloads, report: () => undefined };
    for (const listeners of [1, 10]) {
      for (const name of ['A', 'B']) {
        cases.push({
          key: `${name}http${listeners}`,
          label: `${name} http ${listeners}`,
          run: async () => {
            const sink = await Sink.start(ctx);
            const cl = await connect({ home: homes[name]!, autoStart: false });
            try {
              const h = await discueHttp(cl, sink, payloads, 300, listeners);
              return { rate: h.rate, messages: h.deliveries, seconds: h.seconds, latencies: new Float64Array() };
            } finally {
              await cl.close();
              sink.stop();
            }
          },
        });
      }
    }
    const r = await inRounds(rounds, cases);
    for (const [k, a] of Object.entries(r)) console.log(`${k.padEnd(8)} ${fmtRate(a.rate).padStart(8)}/s  rounds ${a.rounds.join(' ')}`);
    await cleanup.run();
  } else {
    const r = await inRounds(rounds, cases);
    for (const [k, a] of Object.entries(r)) console.log(`${k.padEnd(8)} ${fmtRate(a.rate).padStart(8)}/s  rounds ${a.rounds.join(' ')}`);
    for (const d of [1, 256]) console.log(`ratio vs raw at ${d}: A ${(r[`A${d}`]!.rate / r[`raw${d}`]!.rate).toFixed(2)}x  B ${(r[`B${d}`]!.rate / r[`raw${d}`]!.rate).toFixed(2)}x  B/A ${(r[`B${d}`]!.rate / r[`A${d}`]!.rate).toFixed(2)}x`);
  }
} finally {
  for (const c of children) c.kill('SIGKILL');
  await servers.stop();
  rmSync(dir, { recursive: true, force: true });
}
