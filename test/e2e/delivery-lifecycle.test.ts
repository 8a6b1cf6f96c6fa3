/**
 * Listener life cycle through the real binary: where a new listener starts
 * (--from new|all), pause and resume without loss, `queue delete --force`
 * removing the queue's registrations and delivery state while other queues'
 * listeners keep working, `publish --wait` exit codes, and 100 listeners on
 * one queue.
 */
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import {
  addListener,
  closeAllServers,
  lines,
  listDeliveries,
  mustRun,
  publishData,
  range,
  runJson,
  showListener,
  startHookServer,
  writeScript,
} from '../helpers/delivery.js';
import type { ListenerJson, Received } from '../helpers/delivery.js';

const sb = useBackendSandbox('dq-life-');
afterEach(async () => {
  await closeAllServers();
});

const datas = (list: Received[]) => list.map((r) => r.envelope.data);

describeBackends('listener life cycle', (backend) => {
  // A durable consumer per listener on NATS: a hundred cost a minute on a busy machine; 25 show the same fan-out.
  const FANOUT = backend.kind === 'nats' ? 25 : 100;

  it('a new listener gets only new messages by default, the backlog too with --from all', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    await publishData(sb, 'orders', ['old-1', 'old-2', 'old-3']);
    const fresh = await startHookServer();
    const all = await startHookServer();
    writeScript(sb, 'all.sh', 'cat >> all.log; echo >> all.log');
    await addListener(sb, ['--queue', 'orders', '--url', fresh.url]);
    await addListener(sb, ['--queue', 'orders', '--url', all.url, '--from', 'all']);
    await addListener(sb, ['--queue', 'orders', '--exec', './all.sh', '--from', 'all']);
    await publishData(sb, 'orders', ['new-1', 'new-2']);
    await waitFor(
      () => fresh.delivered.length >= 2 && all.delivered.length >= 5 && lines(join(sb.dir, 'all.log')).length >= 5,
      20_000,
      'deliveries',
    );
    expect(datas(all.delivered)).toEqual(['old-1', 'old-2', 'old-3', 'new-1', 'new-2']);
    expect(lines(join(sb.dir, 'all.log'))).toEqual(['old-1', 'old-2', 'old-3', 'new-1', 'new-2']);
    expect(datas(fresh.delivered)).toEqual(['new-1', 'new-2']);
    const bad = await sb.run(['listener', 'add', '--queue', 'orders', '--url', fresh.url, '--from', 'yesterday']);
    expect(bad.code).toBe(2);
  });

  it('listener list/show/remove: a removed listener gets nothing more and its records are gone', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    await mustRun(sb, ['queue', 'create', 'other']);
    const kept = await startHookServer();
    const removed = await startHookServer(() => ({ status: 500 }));
    await addListener(sb, ['--queue', 'orders', '--url', kept.url, '--name', 'kept']);
    const gone = await addListener(sb, ['--queue', 'orders', '--url', removed.url, '--name', 'gone', '--max-attempts', '1']);
    await addListener(sb, ['--queue', 'other', '--exec', 'true', '--name', 'elsewhere']);
    expect((await runJson<ListenerJson[]>(sb, ['listener', 'list', '--queue', 'orders'])).map((l) => l.name).sort()).toEqual(['gone', 'kept']);
    const table = await mustRun(sb, ['listener', 'list']);
    for (const name of ['kept', 'gone', 'elsewhere']) expect(table).toContain(name);
    expect(await mustRun(sb, ['listener', 'show', 'gone'])).toContain(removed.url);

    await publishData(sb, 'orders', ['one']);
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 1, 20_000, 'a dead delivery');
    await mustRun(sb, ['listener', 'remove', 'gone']);
    expect((await sb.run(['listener', 'show', gone.id])).code).toBe(4);
    expect((await sb.run(['listener', 'remove', 'gone'])).code).toBe(4);
    expect((await sb.run(['deliveries', 'list', '--listener', 'gone'])).code).toBe(4);
    expect(await listDeliveries(sb, ['--state', 'dead'])).toEqual([]);
    await publishData(sb, 'orders', ['two']);
    await waitFor(() => kept.delivered.length === 2, 20_000, 'the kept listener');
    expect(removed.requests).toHaveLength(1);
    // The name is free again.
    await addListener(sb, ['--queue', 'orders', '--url', kept.url, '--name', 'gone']);
    expect((await sb.run(['listener', 'add', '--queue', 'orders', '--url', kept.url, '--name', 'gone'])).code).toBe(5);
  });

  it('pause holds deliveries without losing any; resume sends them in order; survives a daemon restart', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    const witness = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', witness.url]);
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'paused-one']);
    await publishData(sb, 'orders', ['a']);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'the first');

    const paused = await runJson<ListenerJson>(sb, ['listener', 'pause', 'paused-one']);
    expect(paused.state).toBe('paused');
    await publishData(sb, 'orders', ['b', 'c']);
    await mustRun(sb, ['publish', 'orders', '--data', 'd']);
    await waitFor(() => witness.delivered.length === 4, 20_000, 'the witness to get all four');
    expect(hook.requests).toHaveLength(1);

    // A restart keeps it paused.
    await mustRun(sb, ['daemon', 'restart']);
    expect((await showListener(sb, 'paused-one')).state).toBe('paused');
    await publishData(sb, 'orders', ['e']);
    await waitFor(() => witness.delivered.length === 5, 20_000, 'the witness to get the fifth');
    expect(hook.requests).toHaveLength(1);
    const table = await mustRun(sb, ['listener', 'list']);
    expect(table).toMatch(/paused-one.*paused/);

    const resumed = await runJson<ListenerJson>(sb, ['listener', 'resume', l.id]);
    expect(resumed.state).toBe('active');
    await waitFor(() => hook.delivered.length === 5, 20_000, 'all five after resume');
    expect(datas(hook.delivered)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(hook.requests).toHaveLength(5);
  });

  it('pause during retries parks the failing delivery; resume continues it, nothing lost', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let up = false;
    const hook = await startHookServer(() => (up ? { status: 200 } : { status: 500 }));
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'p', '--retry-delay', '50ms', '--max-attempts', '1000']);
    await publishData(sb, 'orders', ['x', 'y', 'z']);
    await waitFor(() => hook.requests.length >= 2, 20_000, 'failing attempts');
    await mustRun(sb, ['listener', 'pause', 'p']);
    up = true;
    const before = hook.requests.length;
    await mustRun(sb, ['listener', 'resume', 'p']);
    await waitFor(() => hook.delivered.length === 3, 20_000, 'all three');
    expect(datas(hook.delivered)).toEqual(['x', 'y', 'z']);
    expect(hook.requests.length).toBeGreaterThan(before);
  });

  it('queue delete --force removes its listener registrations and their state; other queues keep working', async () => {
    await mustRun(sb, ['queue', 'create', 'doomed']);
    await mustRun(sb, ['queue', 'create', 'kept']);
    const onlyDoomed = await startHookServer();
    const both = await startHookServer();
    const onlyKept = await startHookServer();
    const failing = await startHookServer(() => ({ status: 500 }));
    const a = await addListener(sb, ['--queue', 'doomed', '--url', onlyDoomed.url, '--name', 'only-doomed']);
    const b = await addListener(sb, ['--queue', 'doomed', '--queue', 'kept', '--url', both.url, '--name', 'both']);
    const c = await addListener(sb, ['--queue', 'kept', '--url', onlyKept.url, '--name', 'only-kept']);
    // A listener on both queues with a dead delivery in each: the doomed queue's must go, the kept one's stay.
    const d = await addListener(sb, ['--queue', 'doomed', '--queue', 'kept', '--url', failing.url, '--name', 'dead-letters', '--max-attempts', '1']);
    await publishData(sb, 'doomed', ['d1', 'd2']);
    await publishData(sb, 'kept', ['k1']);
    await waitFor(() => onlyDoomed.delivered.length === 2 && both.delivered.length === 3 && onlyKept.delivered.length === 1, 20_000, 'first round');
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 3, 20_000, 'three dead deliveries');

    const refused = await sb.run(['queue', 'delete', 'doomed']);
    expect(refused.code).toBe(5);
    await mustRun(sb, ['queue', 'delete', 'doomed', '--force']);

    const listeners = await runJson<ListenerJson[]>(sb, ['listener', 'list']);
    expect(listeners.map((l) => l.name).sort()).toEqual(['both', 'dead-letters', 'only-kept']);
    expect(listeners.find((l) => l.id === b.id)!.queues).toEqual(['kept']);
    expect(listeners.find((l) => l.id === d.id)!.queues).toEqual(['kept']);
    expect((await sb.run(['listener', 'show', a.id])).code).toBe(4);
    // Delivery state of the deleted queue is gone; the kept queue's stays.
    const dead = await listDeliveries(sb, ['--state', 'dead']);
    expect(dead.map((x) => x.queue)).toEqual(['kept']);
    expect((await listDeliveries(sb, ['--listener', 'both', '--state', 'delivered'])).every((x) => x.queue === 'kept')).toBe(true);
    expect((await showListener(sb, 'both')).progress!.map((p) => p.queue)).toEqual(['kept']);

    await publishData(sb, 'kept', ['k2']);
    await waitFor(() => both.delivered.length === 4 && onlyKept.delivered.length === 2, 20_000, 'kept listeners still work');
    // In order per queue; the two queues' workers run side by side, so k1 may come before d2 (seen on NATS).
    expect(datas(both.delivered).filter((d) => d.startsWith('d'))).toEqual(['d1', 'd2']);
    expect(datas(both.delivered).filter((d) => d.startsWith('k'))).toEqual(['k1', 'k2']);

    // A queue with the same name later starts afresh: the old registrations do not come back.
    await mustRun(sb, ['queue', 'create', 'doomed']);
    const witness = await startHookServer();
    await addListener(sb, ['--queue', 'doomed', '--url', witness.url]);
    await publishData(sb, 'doomed', ['reborn']);
    await waitFor(() => witness.delivered.length === 1, 20_000, 'the witness');
    await publishData(sb, 'kept', ['k3']);
    await waitFor(() => onlyKept.delivered.length === 3 && both.delivered.length === 5, 20_000, 'k3');
    expect(onlyDoomed.requests).toHaveLength(2);
    // In order per queue (as above: the two queues' workers run side by side).
    expect(datas(both.delivered).filter((d) => d.startsWith('d'))).toEqual(['d1', 'd2']);
    expect(datas(both.delivered).filter((d) => d.startsWith('k'))).toEqual(['k1', 'k2', 'k3']);

    // And after a restart, still so.
    await mustRun(sb, ['daemon', 'restart']);
    const after = await runJson<ListenerJson[]>(sb, ['listener', 'list']);
    expect(after.filter((l) => l.name).map((l) => l.name).sort()).toEqual(['both', 'dead-letters', 'only-kept']);
    expect(after.find((l) => l.id === c.id)!.queues).toEqual(['kept']);
    const deadAfter = await waitFor(async () => {
      const list = await listDeliveries(sb, ['--state', 'dead']);
      return list.length === 3 ? list : undefined;
    }, 20_000, 'k1, k2, k3 dead at the failing listener');
    expect(deadAfter.every((x) => x.queue === 'kept' && x.listenerId === d.id)).toBe(true);
  });

  it('publish --wait: 0 once every listener has it, 1 when a delivery died, 124 when one is too slow', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // No listeners: nothing to wait for.
    expect((await sb.run(['publish', 'orders', '--data', 'alone', '--wait'])).code).toBe(0);

    const good = await startHookServer(() => new Promise((r) => setTimeout(() => r({ status: 200 }), 200)));
    writeScript(sb, 'ok.sh', 'cat >> ok.log; echo >> ok.log');
    await addListener(sb, ['--queue', 'orders', '--url', good.url, '--name', 'good']);
    await addListener(sb, ['--queue', 'orders', '--exec', './ok.sh', '--name', 'cmd']);
    const ok = await sb.run(['publish', 'orders', '--data', 'shipped', '--wait', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const okResult = JSON.parse(ok.stdout) as { ids: string[]; deliveries: { name?: string; state: string }[] };
    // Exit 0 means they have it already, not soon.
    expect(good.delivered.map((r) => r.envelope.id)).toContain(okResult.ids[0]);
    expect(lines(join(sb.dir, 'ok.log'))).toContain('shipped');
    expect(okResult.deliveries.map((x) => [x.name, x.state]).sort()).toEqual([
      ['cmd', 'delivered'],
      ['good', 'delivered'],
    ]);

    const bad = await startHookServer(() => ({ status: 500 }));
    await addListener(sb, ['--queue', 'orders', '--url', bad.url, '--name', 'bad', '--max-attempts', '1']);
    const died = await sb.run(['publish', 'orders', '--data', 'doomed', '--wait']);
    expect(died.code).toBe(1);
    expect(died.stdout.trim()).toMatch(/^[0-9A-Z]{26}$/);
    expect(died.stderr).toContain('bad');
    await mustRun(sb, ['listener', 'remove', 'bad']);

    const slow = await startHookServer(() => 'hang');
    await addListener(sb, ['--queue', 'orders', '--url', slow.url, '--name', 'slow', '--timeout', '60s']);
    const late = await sb.run(['publish', 'orders', '--data', 'late', '--wait', '--wait-timeout', '1s']);
    expect(late.code).toBe(124);
    // Still stored and delivered to the others, whatever --wait said.
    expect(late.stdout.trim()).toMatch(/^[0-9A-Z]{26}$/);
    await waitFor(() => good.delivered.some((r) => r.envelope.data === 'late'), 20_000, 'the fast listener');

    // A paused listener does not hold up --wait.
    await mustRun(sb, ['listener', 'pause', 'slow']);
    expect((await sb.run(['publish', 'orders', '--data', 'while paused', '--wait', '--wait-timeout', '20s'])).code).toBe(0);
  });

  it(`${FANOUT} listeners on one queue all get every message, in order`, async () => {
    await mustRun(sb, ['queue', 'create', 'fanout']);
    const hook = await startHookServer();
    const N = FANOUT;
    // Registered in a few parallel lanes to keep the test short.
    const lanes = 6;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = lane; i < N; i += lanes) await addListener(sb, ['--queue', 'fanout', '--url', `${hook.url}/${i}`, '--name', `l${i}`]);
      }),
    );
    expect(await runJson<ListenerJson[]>(sb, ['listener', 'list', '--queue', 'fanout'])).toHaveLength(N);
    const M = 20;
    const published = await publishData(sb, 'fanout', range(M, 'msg-'));
    await waitFor(() => hook.delivered.length >= N * M, 60_000, `${N * M} deliveries`);
    const byPath = new Map<string, string[]>();
    for (const r of hook.delivered) {
      const list = byPath.get(r.path) ?? [];
      list.push(r.envelope.id);
      byPath.set(r.path, list);
    }
    expect(byPath.size).toBe(N);
    for (const [path, got] of byPath) expect(got, path).toEqual(published);
    expect(hook.delivered).toHaveLength(N * M);
  });
});
