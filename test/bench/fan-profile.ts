/**
 * Where the daemon's time goes delivering one backlog to many HTTP
 * listeners (issue 14's 100-listener fan-out): a LevelDB daemon run under
 * --cpu-prof in its foreground form (Node refuses --cpu-prof in
 * NODE_OPTIONS), three rounds of the bench's case; prints the rates and the
 * top self-time functions.
 *   npx tsx test/bench/fan-profile.ts [listeners=100] [messages=500]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/index.js';
import { BIN, discueEnv } from './daemon.js';
import { Sink, discueHttp } from './delivery.js';
import { Cleanup, payloadPool, sleep } from './lib.js';
import { profileSummary } from './profile.js';
import { answersHello } from './wire.js';

const listeners = Number(process.argv[2] ?? 100);
const messages = Number(process.argv[3] ?? 500);
const dir = mkdtempSync(join(tmpdir(), 'discue-fanprof-'));
const home = join(dir, 'home');
const profDir = join(dir, 'prof');
mkdirSync(home, { recursive: true, mode: 0o700 });
mkdirSync(profDir);
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, BIN, 'daemon', 'start', '--foreground'], { env: discueEnv(home), stdio: 'ignore' });
while (!(await answersHello(join(home, 'run', 'discue.sock')))) await sleep(20);
const payloads = payloadPool(200);
const cleanup = new Cleanup();
const sink = await Sink.start({ root: dir, cleanup, payloads, report: () => undefined });
const client = await connect({ home, autoStart: false });
for (let round = 1; round <= 3; round++) {
  const r = await discueHttp(client, sink, payloads, messages, listeners);
  console.log(`round ${round}: ${listeners} listeners x ${messages} messages: ${Math.round(r.rate)} deliveries/s`);
}
await client.close();
await cleanup.run();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
console.log(profileSummary(profDir));
rmSync(dir, { recursive: true, force: true });
