/**
 * Where the daemon's time goes when publishing to NATS (issue 11): a single
 * node, a daemon run under --cpu-prof (directly in its foreground form:
 * Node refuses --cpu-prof in NODE_OPTIONS), publishing at 1 then 256 in
 * flight; prints the top self-time functions and the rates.
 *   npx tsx test/bench/nats-profile.ts [seconds] [replicas] [publish|http]
 * `http`: a 2,000-message backlog delivered to one HTTP listener instead.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/index.js';
import { natsServers } from '../helpers/nats.js';
import { BIN, discueEnv } from './daemon.js';
import { Cleanup, payloadPool, sleep } from './lib.js';
import { Sink, discueHttp } from './delivery.js';
import { profileSummary } from './profile.js';
import { runLoad } from './load.js';
import { answersHello } from './wire.js';

const seconds = Number(process.argv[2] ?? 5);
const replicas = Number(process.argv[3] ?? 1);
const mode = process.argv[4] ?? 'publish';
const dir = mkdtempSync(join(tmpdir(), 'discue-natsprof-'));
const servers = await natsServers(replicas === 1 ? 1 : 3, 60_000);
const home = join(dir, 'home');
const profDir = join(dir, 'prof');
mkdirSync(home, { recursive: true, mode: 0o700 });
mkdirSync(profDir);
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, BIN, 'daemon', 'start', '--foreground'], {
  env: { ...discueEnv(home), DISCUE_STORE: servers.urls, DISCUE_STORE_REPLICAS: String(replicas) },
  stdio: 'ignore',
});
const socket = join(home, 'run', 'discue.sock');
while (!(await answersHello(socket))) await sleep(20);
const payloads = payloadPool(200);
const c = await connect({ home, autoStart: false });
await c.request('queue.create', { name: 'q' });
await c.close();
if (mode === 'http') {
  const cleanup = new Cleanup();
  const sink = await Sink.start({ root: dir, cleanup, payloads, report: () => undefined });
  const cl = await connect({ home, autoStart: false });
  const r = await discueHttp(cl, sink, payloads, 2_000, 1);
  console.log(`http 1 listener: ${Math.round(r.rate)}/s`);
  await cl.close();
  await cleanup.run();
}
for (const [conns, depth] of mode === 'http' ? [] : ([[1, 1], [1, 256]] as const)) {
  const r = await runLoad({
    open: async () => {
      const cl = await connect({ home, autoStart: false });
      return { publish: (q, m) => cl.publish(q, m), close: () => cl.close() };
    },
    queue: 'q', connections: conns, depth, warmupMs: 500, durationMs: seconds * 1000, payloads,
  });
  console.log(`${conns}x${depth}: ${Math.round(r.rate)}/s`);
}
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await servers.stop();
console.log(profileSummary(profDir));
rmSync(dir, { recursive: true, force: true });
