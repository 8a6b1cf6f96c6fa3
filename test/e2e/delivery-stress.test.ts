/**
 * Listeners that keep up with a stream of small concurrent publishes: the
 * engine hands fresh messages to caught-up workers without a disk read, and
 * reads the disk when behind. Messages stored while a worker was reading
 * must not be skipped when it switches back. Publishes go through the
 * library client (as a Node service would), many in flight at once.
 */
import { afterEach, expect, it } from 'vitest';
import { connect } from '../../dist/index.js';
import { waitFor } from '../helpers/sandbox.js';
import { currentBackend, describeBackends, useBackendSandbox } from '../helpers/backends.js';
import { addListener, closeAllServers, mustRun, startHookServer } from '../helpers/delivery.js';

const sb = useBackendSandbox('dq-stress-');
afterEach(async () => {
  await closeAllServers();
});

describeBackends('caught-up listeners under a stream of concurrent publishes', () => {
  it('skip nothing and keep order', async () => {
    await mustRun(sb, ['queue', 'create', 'stream']);
    // One answers at once, one after a short random pause: both switch often between reading the disk and being caught up.
    const quick = await startHookServer();
    const jittery = await startHookServer(() => new Promise((r) => setTimeout(() => r({ status: 200 }), Math.random() < 0.1 ? 15 : 0)));
    await addListener(sb, ['--queue', 'stream', '--url', quick.url]);
    await addListener(sb, ['--queue', 'stream', '--url', jittery.url]);
    // A foreground listen with a prefetch window: the same worker, another sender.
    const listen = sb.spawn(['listen', 'stream', '--json']);
    let listened = '';
    listen.stdout!.setEncoding('utf8').on('data', (d: string) => (listened += d));
    const listenIds = () => listened.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
    await waitFor(async () => (await sb.run(['listener', 'list', '--json'])).stdout.includes('"connected":true'), 20_000, 'listen connected');

    const client = await connect({ home: sb.home });
    const ids: string[] = [];
    try {
      // The switch between reading the disk and being caught up is LevelDB's own (its consumer's buffer):
      // 2,000 make it happen often. JetStream's server does that part, and with one message in flight per
      // listener each costs an ack round trip, so the NATS run checks the same order with fewer.
      const TOTAL = currentBackend().kind === 'nats' ? 500 : 2000;
      const LANES = 12;
      let next = 0;
      await Promise.all(
        Array.from({ length: LANES }, async () => {
          while (next < TOTAL) {
            const i = next++;
            const result = await client.publish('stream', { data: `n${i}` });
            ids.push(...result.ids);
            // Now and then a pause, so the listeners catch up and go back to taking fresh messages.
            if (i % 97 === 0) await new Promise((r) => setTimeout(r, 20));
          }
        }),
      );
    } finally {
      await client.close();
    }
    const sorted = [...ids].sort();
    const got = () => ({ quick: quick.delivered.length, jittery: jittery.delivered.length, listen: listenIds().length });
    await waitFor(
      () => quick.delivered.length >= ids.length && jittery.delivered.length >= ids.length && listenIds().length >= ids.length,
      90_000,
      `every message at every listener (${JSON.stringify(got())} of ${ids.length})`,
    ).catch((err: Error) => {
      const missing = sorted.filter((id) => !quick.delivered.some((r) => r.envelope.id === id));
      throw new Error(`${err.message}; got ${JSON.stringify(got())}; quick misses ${missing.length}`);
    });
    expect(quick.delivered.map((r) => r.envelope.id)).toEqual(sorted);
    expect(jittery.delivered.map((r) => r.envelope.id)).toEqual(sorted);
    expect(listenIds()).toEqual(sorted);
  });
});
