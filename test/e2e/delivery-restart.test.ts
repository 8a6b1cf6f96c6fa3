/**
 * Delivery state across `kill -9` of the daemon: a delivery in the middle of
 * its retries keeps its attempt count and its Retry-After, a dead delivery
 * being retried is resumed, and a listener's position survives.
 */
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import { addListener, closeAllServers, listDeliveries, mustRun, publishData, startHookServer } from '../helpers/delivery.js';
import type { DeliveryJson } from '../helpers/delivery.js';

const sb = useBackendSandbox('dq-restart-');
afterEach(async () => {
  await closeAllServers();
});

async function killDaemon(): Promise<number> {
  const pid = sb.daemonPid();
  expect(pid).toBeDefined();
  process.kill(pid!, 'SIGKILL');
  await waitFor(() => {
    try {
      process.kill(pid!, 0);
      return false;
    } catch {
      return true;
    }
  }, 10_000, 'the daemon to die');
  return pid!;
}

describeBackends('delivery state across kill -9', () => {
  it('a delivery in its backoff keeps its attempt count and its Retry-After after a restart', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer((_req, index) => {
      if (index === 0) return { status: 500, body: 'first' };
      if (index === 1) return { status: 503, headers: { 'retry-after': '4' }, body: 'come back later' };
      return { status: 200 };
    });
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--retry-delay', '50ms', '--max-attempts', '3']);
    const [id] = await publishData(sb, 'orders', ['important']);
    // Two attempts made and saved, the third due no earlier than 4 s after the second.
    const open = await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id])).find((d) => d.attempts.length === 2 && d.nextAttemptAt),
      20_000,
      'two attempts on disk',
    );
    expect(open.state).toBe('failed');
    const second = hook.requests[1]!;
    const old = await killDaemon();
    await mustRun(sb, ['listener', 'list']); // starts it again
    expect(sb.daemonPid()).not.toBe(old);

    await waitFor(() => hook.delivered.length === 1, 30_000, 'the third attempt');
    expect(hook.requests).toHaveLength(3);
    expect(hook.requests.map((r) => r.headers['webhook-id'])).toEqual([id, id, id]);
    // Retry-After outlived the daemon.
    expect(hook.requests[2]!.at - second.at).toBeGreaterThanOrEqual(3990);
    const done = await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered'])).find((d) => d.messageId === id),
      10_000,
      'the delivered record',
    );
    expect(done.attempts.map((a) => [a.attempt, a.ok, a.status])).toEqual([
      [1, false, 500],
      [2, false, 503],
      [3, true, 200],
    ]);
  });

  it('an attempt count that reached max-attempts before the crash is not reset by it', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer((_req, index) =>
      index === 1 ? { status: 503, headers: { 'retry-after': '3' } } : { status: 500 },
    );
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--retry-delay', '50ms', '--max-attempts', '3']);
    await publishData(sb, 'orders', ['doomed']);
    await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id])).some((d) => d.attempts.length === 2), 20_000, 'two attempts on disk');
    await killDaemon();
    await mustRun(sb, ['listener', 'list']);
    const dead = await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead']))[0], 30_000, 'dead after the third attempt');
    expect(dead.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(hook.requests).toHaveLength(3);
  });

  it('a dead delivery being retried when the daemon died is resumed and delivered', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let mode: 'fail' | 'later' | 'ok' = 'fail';
    const hook = await startHookServer(() =>
      mode === 'fail' ? { status: 500 } : mode === 'later' ? { status: 503, headers: { 'retry-after': '3' } } : { status: 200 },
    );
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--retry-delay', '50ms', '--max-attempts', '2']);
    const [first, second] = await publishData(sb, 'orders', ['was dead', 'after it']);
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 2, 20_000, 'both dead');
    mode = 'later';
    await mustRun(sb, ['deliveries', 'retry', `${l.id}/${first}`]);
    await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id])).some((d: DeliveryJson) => d.messageId === first && d.attempts.length === 3 && d.state === 'failed'),
      20_000,
      'the retry in its backoff',
    );
    await killDaemon();
    mode = 'ok';
    await mustRun(sb, ['listener', 'list']);
    await waitFor(() => hook.delivered.length === 1, 30_000, 'the retried delivery');
    expect(hook.delivered[0]!.envelope.id).toBe(first);
    const history = await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered'])).find((d) => d.messageId === first),
      10_000,
      'in the history',
    );
    expect(history.attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4]);
    // The other dead one stays dead, and is not sent again by the restart.
    const dead = await listDeliveries(sb, ['--state', 'dead']);
    expect(dead.map((d) => d.messageId)).toEqual([second]);
    expect(hook.requests.filter((r) => r.envelope.id === second)).toHaveLength(2);
  });
});
