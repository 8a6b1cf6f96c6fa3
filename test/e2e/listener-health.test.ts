/**
 * What `listener list`, `listener show`, `top` and `publish --wait` say about
 * a listener that falls behind or fails, through the real binary: pending
 * counted past 10,000 and kept right through restarts and removals, the lag
 * of the oldest undelivered message, health (last outcome, failures in a
 * row, next retry) that clears on recovery, and a 410 that fails --wait.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import { addListener, closeAllServers, mustRun, publishData, range, runJson, startHookServer } from '../helpers/delivery.js';

interface Progress {
  queue: string;
  pending?: number;
  lagMs?: number;
  lastOutcome?: 'ok' | 'failed';
  consecutiveFailures: number;
  lastError?: string;
  nextAttemptAt?: string;
  delivered: number;
}
interface Listed {
  id: string;
  name?: string;
  state: string;
  progress: Progress[];
  stats: { pending: number; lagMs: number };
}

const sb = useSandbox('dq-health-');
afterEach(async () => {
  await closeAllServers();
});

async function listed(name: string): Promise<Listed> {
  const list = await runJson<Listed[]>(sb, ['listener', 'list']);
  const found = list.find((l) => l.name === name);
  expect(found, `listener ${name} in ${JSON.stringify(list)}`).toBeDefined();
  return found!;
}

/** NDJSON publishing in chunks (each call one CLI run). */
async function publishMany(queue: string, n: number): Promise<void> {
  for (let done = 0; done < n; done += 4000) await publishData(sb, queue, range(Math.min(4000, n - done), `m${done}-`));
}

describe('pending and lag', () => {
  it('counts 12,000 pending behind a paused listener, across a restart and a delete, and 0 once it has caught up', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'hook']);
    await mustRun(sb, ['listener', 'pause', 'hook']);
    await publishMany('orders', 12_000);

    const paused = await listed('hook');
    expect(paused.stats.pending).toBe(12_000);
    expect(paused.progress[0]!.pending).toBe(12_000);
    const text = await mustRun(sb, ['listener', 'list']);
    expect(text).toMatch(/PENDING/);
    expect(text).toMatch(/\s12000\s/);

    // After a restart the count starts from disk: the same figure, not a cap.
    await mustRun(sb, ['daemon', 'restart']);
    await waitFor(async () => (await listed('hook')).stats.pending === 12_000, 30_000, 'pending counted again after the restart');

    // A removed message is no longer pending.
    const [first] = await runJson<{ id: string }[]>(sb, ['messages', 'list', 'orders', '--limit', '1']);
    await mustRun(sb, ['messages', 'delete', 'orders', first!.id]);
    expect((await listed('hook')).stats.pending).toBe(11_999);

    await mustRun(sb, ['listener', 'resume', 'hook']);
    await waitFor(() => hook.delivered.length >= 11_999, 120_000, 'the backlog to be delivered');
    const done = await waitFor(async () => {
      const l = await listed('hook');
      return l.stats.pending === 0 ? l : undefined;
    }, 30_000, 'pending to reach 0');
    expect(done.stats.lagMs).toBe(0);
    expect(hook.delivered).toHaveLength(11_999);
    // The waits above add up to three minutes: the test's own limit must not cut them short on a busy machine.
  }, 240_000);

  it('a purge takes the purged messages off pending', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'hook']);
    await mustRun(sb, ['listener', 'pause', 'hook']);
    await publishData(sb, 'orders', range(50));
    expect((await listed('hook')).stats.pending).toBe(50);
    await mustRun(sb, ['queue', 'purge', 'orders']);
    expect((await listed('hook')).stats.pending).toBe(0);
    await publishData(sb, 'orders', range(3, 'after-'));
    expect((await listed('hook')).stats.pending).toBe(3);
    await mustRun(sb, ['listener', 'resume', 'hook']);
    await waitFor(() => hook.delivered.length === 3, 20_000, 'the three messages published after the purge');
    expect(hook.delivered.map((r) => r.envelope.data)).toEqual(['after-0', 'after-1', 'after-2']);
  });

  it('a listener that falls behind shows a lag that grows; one that keeps up shows 0', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'behind']);
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'uptodate']);
    await mustRun(sb, ['listener', 'pause', 'behind']);
    await publishData(sb, 'orders', range(5));
    await waitFor(() => hook.delivered.length === 5, 20_000, 'the active listener to get all five');

    const first = await waitFor(async () => {
      const l = await listed('behind');
      return l.stats.lagMs > 0 ? l : undefined;
    }, 20_000, 'a lag on the paused listener');
    expect(first.progress[0]!.lagMs).toBe(first.stats.lagMs);
    const later = await waitFor(async () => {
      const l = await listed('behind');
      return l.stats.lagMs > first.stats.lagMs + 1000 ? l : undefined;
    }, 20_000, 'the lag to grow');
    expect(later.stats.pending).toBe(5);
    expect((await listed('uptodate')).stats.lagMs).toBe(0);

    const text = await mustRun(sb, ['listener', 'list']);
    expect(text).toMatch(/LAG/);
    expect(text).toMatch(/behind\s.*\s5\s+\d+s\s/);
    const top = await mustRun(sb, ['top']);
    expect(top).toMatch(/behind\s+http\s+paused\s+5\s+\d+s\s/);
    expect(top).toMatch(/uptodate\s+http\s+active\s+0\s+0s\s/);
    const snapshot = await runJson<{ listeners: Listed[] }>(sb, ['top']);
    expect(snapshot.listeners.find((l) => l.name === 'behind')!.stats.lagMs).toBeGreaterThan(0);
  });
});

describe('health', () => {
  it('a listener whose receiver is down shows its failures, --wait says why it timed out, and recovery clears it', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    await hook.close(); // nothing listens on its port now: ECONNREFUSED
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'hook', '--retry-delay', '300ms', '--max-attempts', '100']);
    await publishData(sb, 'orders', ['first']);

    const failing = await waitFor(async () => {
      const l = await listed('hook');
      return l.progress[0]!.consecutiveFailures >= 3 ? l : undefined;
    }, 30_000, 'three failed attempts');
    expect(failing.state).toBe('active');
    const p = failing.progress[0]!;
    expect(p.lastOutcome).toBe('failed');
    expect(p.lastError).toContain('ECONNREFUSED');
    const text = await mustRun(sb, ['listener', 'list']);
    expect(text).toMatch(/failing: \d+ failed attempts, ECONNREFUSED/);
    const show = await mustRun(sb, ['listener', 'show', 'hook']);
    expect(show).toMatch(/health:\s+failing: \d+ failed attempts, ECONNREFUSED/);
    expect((await mustRun(sb, ['top']))).toMatch(/hook\s+http\s+active\s+.*\d+ failed attempts, ECONNREFUSED/);
    // The next retry time shows while it waits out its backoff.
    await waitFor(async () => (await listed('hook')).progress[0]!.nextAttemptAt, 20_000, 'a next retry time');

    const wait = await sb.run(['publish', 'orders', '--data', 'second', '--wait', '--wait-timeout', '1s']);
    expect(wait.code, wait.stderr).toBe(124);
    expect(wait.stderr).toMatch(/hook: \d+ failed attempts, ECONNREFUSED(, next retry in \d+s)?/);
    expect(wait.stderr).toContain('[TIMEOUT]');

    // A restart does not make it look healthy until its next attempt.
    await mustRun(sb, ['daemon', 'restart']);
    const restarted = (await listed('hook')).progress[0]!;
    expect(restarted.consecutiveFailures).toBeGreaterThan(0);
    expect(restarted.lastOutcome).toBe('failed');
    expect(restarted.lastError).toContain('ECONNREFUSED');

    await hook.reopen();
    await waitFor(() => hook.delivered.length === 2, 30_000, 'both messages once the receiver is back');
    const healthy = await waitFor(async () => {
      const l = await listed('hook');
      return l.progress[0]!.lastOutcome === 'ok' ? l : undefined;
    }, 20_000, 'the listener to look healthy');
    expect(healthy.progress[0]!.consecutiveFailures).toBe(0);
    expect(healthy.progress[0]!.lastError).toBeUndefined();
    expect(healthy.progress[0]!.nextAttemptAt).toBeUndefined();
    expect(await mustRun(sb, ['listener', 'list'])).not.toContain('failing');
    const top = await mustRun(sb, ['top']);
    expect(top).toMatch(/hook\s+http\s+active\s+0\s+0s\s.*\sok$/m);
    expect(top).not.toMatch(/LISTENER[^\n]*\n[^\n]*ECONNREFUSED/);
  });

  it('publish --wait fails with DELIVERY_FAILED when the receiver answers 410 Gone', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const gone = await startHookServer(() => ({ status: 410, body: 'gone' }));
    await addListener(sb, ['--queue', 'orders', '--url', gone.url, '--name', 'gone']);
    const result = await sb.run(['publish', 'orders', '--data', 'refused', '--wait']);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout.trim()).toMatch(/^[0-9A-Z]{26}$/);
    expect(result.stderr).toMatch(/gone: refused/);
    expect(result.stderr).toContain('[DELIVERY_FAILED]');
    expect(result.stderr).not.toContain('no active listeners');
    expect((await listed('gone')).state).toBe('disabled');

    // The same in --json, with a fresh listener (resuming would resend the refused message at once):
    // the outcome says refused, with the reason.
    await mustRun(sb, ['listener', 'remove', 'gone']);
    await addListener(sb, ['--queue', 'orders', '--url', gone.url, '--name', 'gone-again']);
    const json = await sb.run(['publish', 'orders', '--data', 'again', '--wait', '--json']);
    expect(json.code, json.stderr).toBe(1);
    const out = JSON.parse(json.stdout) as { deliveries: { name: string; state: string; reason?: string }[] };
    expect(out.deliveries).toHaveLength(1);
    expect(out.deliveries[0]).toMatchObject({ name: 'gone-again', state: 'refused' });
    expect(out.deliveries[0]!.reason).toContain('410');
    // stderr carries the verdict as JSON too, like every error under --json.
    expect(JSON.parse(json.stderr.trim())).toMatchObject({ error: { code: 'DELIVERY_FAILED' } });
  });
});
