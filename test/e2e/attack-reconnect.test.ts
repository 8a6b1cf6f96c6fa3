/**
 * A reconnect storm: 20 library clients publish the same idempotency keys
 * while the daemon is killed -9 five times. Every client reconnects (and
 * auto-starts) by itself, at the same moments. What must hold: every request
 * ends, with success or a clear DiscueError, within its deadline; every key
 * is stored exactly once and every client that got an answer got the same id
 * for it; one daemon serves the home at the end, not several.
 */
import { describe, expect, it } from 'vitest';
import { connect, isDiscueError } from '../../src/index.js';
import type { DiscueClient } from '../../src/index.js';
import { daemonProcesses, listAll, waitForExit } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

const sb = useSandbox('dq-storm-');

/** Library clients of the sandbox's daemon, closed with the sandbox. */
async function connectAll(count: number, requestTimeoutMs: number): Promise<DiscueClient[]> {
  const clients: DiscueClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = await connect({ home: sb.home, requestTimeoutMs });
    sb.onDispose(() => client.close());
    clients.push(client);
  }
  return clients;
}

describe('reconnect storm', () => {
  it('20 clients publishing the same keys through 5 kill -9 of the daemon: each key stored once with one id, every request ends, one daemon left', async () => {
    const CLIENTS = 20;
    const KEYS = 150;
    const KILLS = 5;
    const REQUEST_TIMEOUT_MS = 20_000;
    {
      const setup = await connect({ home: sb.home });
      await setup.request('queue.create', { name: 'q' });
      await setup.close();
    }
    const clients = await connectAll(CLIENTS, REQUEST_TIMEOUT_MS);

    const ids = new Map<string, Set<string>>();
    const failures = new Map<string, number>();
    let answered = 0;
    let slowest = 0;
    const publishAll = async (client: DiscueClient, offset: number) => {
      // Each client walks the keys from its own offset, so the same key is sent
      // by several clients at about the same time.
      for (let n = 0; n < KEYS; n++) {
        const key = `k${(n + offset) % KEYS}`;
        for (let attempt = 1; ; attempt++) {
          const started = Date.now();
          try {
            const result = await client.publish('q', { data: key, key });
            slowest = Math.max(slowest, Date.now() - started);
            (ids.get(key) ?? ids.set(key, new Set()).get(key)!).add(result.ids[0]!);
            answered++;
            break;
          } catch (err) {
            slowest = Math.max(slowest, Date.now() - started);
            expect(isDiscueError(err), String(err)).toBe(true);
            const code = (err as { code: string }).code;
            failures.set(code, (failures.get(code) ?? 0) + 1);
            // Bounded: a key that cannot be published in 20 tries fails the test.
            expect(attempt, `key ${key}: ${String(err)}`).toBeLessThan(20);
          }
        }
      }
    };
    const publishing = Promise.all(clients.map((c, i) => publishAll(c, i * 7)));

    const killed: number[] = [];
    let settled = false;
    void publishing.finally(() => (settled = true));
    for (let k = 0; k < KILLS && !settled; k++) {
      const target = answered + 100;
      await waitFor(() => answered >= target || settled, 60_000, `${target} answers before kill ${k + 1}`);
      if (settled) break;
      const pid = sb.daemonPid();
      if (pid === undefined || killed.includes(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        continue;
      }
      await waitForExit(pid);
    }
    await publishing;

    // Several kills landed while publishing went on (the storm happened).
    expect(killed.length).toBeGreaterThanOrEqual(3);
    expect(answered).toBe(CLIENTS * KEYS);
    // Every request ended within its deadline (plus room for a busy machine), none hung.
    expect(slowest).toBeLessThan(REQUEST_TIMEOUT_MS + 10_000);
    for (const code of failures.keys()) expect(['DAEMON_DIED', 'DAEMON_UNREACHABLE', 'DAEMON_TIMEOUT', 'DAEMON_STARTING', 'SHUTTING_DOWN']).toContain(code);
    // Each key: one id for every client that got an answer, and stored once.
    expect(ids.size).toBe(KEYS);
    for (const [key, set] of ids) expect(set.size, `ids for ${key}`).toBe(1);
    const stored = await listAll(sb, 'q');
    expect(stored.map((m) => m.data).sort()).toEqual([...ids.keys()].sort());
    for (const m of stored) expect(ids.get(m.data)!.has(m.id)).toBe(true);
    // One daemon for the home, the one in the pid file: the 20 concurrent auto-starts made no orphan.
    await waitFor(() => daemonProcesses(sb.home).length === 1, 20_000, 'a single daemon for the home');
    expect(daemonProcesses(sb.home)).toEqual([sb.daemonPid()]);
    console.log('storm', { killed: killed.length, slowestMs: slowest, failures: Object.fromEntries(failures) });
  });

  it('20 clients publishing through 5 `daemon restart`s: requests refused by the stopping daemon go to the next one, nothing acknowledged is lost, one daemon left', async () => {
    const CLIENTS = 20;
    const PER_CLIENT = 120;
    {
      const setup = await connect({ home: sb.home });
      await setup.request('queue.create', { name: 'q' });
      await setup.close();
    }
    const clients = await connectAll(CLIENTS, 20_000);
    const acked = new Map<string, string>();
    const failures = new Map<string, number>();
    let stop = false;
    const publishAll = async (client: DiscueClient, c: number) => {
      for (let n = 0; n < PER_CLIENT && !stop; n++) {
        const data = `c${c}-${n}`;
        try {
          const result = await client.publish('q', { data, key: data });
          acked.set(data, result.ids[0]!);
        } catch (err) {
          expect(isDiscueError(err), String(err)).toBe(true);
          const code = (err as { code: string }).code;
          failures.set(code, (failures.get(code) ?? 0) + 1);
          n--; // the same key again: stored at most once
        }
      }
    };
    const publishing = Promise.all(clients.map((client, c) => publishAll(client, c)));
    const restarts: number[] = [];
    try {
      for (let r = 0; r < 5; r++) {
        const target = acked.size + 50;
        await waitFor(() => acked.size >= target || acked.size === CLIENTS * PER_CLIENT, 60_000, `${target} acknowledged`);
        const result = await sb.run(['daemon', 'restart'], { timeoutMs: 60_000 });
        expect(result.code, result.stderr).toBe(0);
        restarts.push(r);
      }
    } finally {
      await publishing.finally(() => (stop = true));
    }
    expect(restarts).toHaveLength(5);
    expect(acked.size).toBe(CLIENTS * PER_CLIENT);
    // A request the stopping daemon refused (not performed) goes to the next daemon by
    // itself: the application never sees SHUTTING_DOWN (before: 145-241 per run).
    expect(failures.get('SHUTTING_DOWN') ?? 0).toBe(0);
    for (const code of failures.keys()) expect(['DAEMON_DIED', 'DAEMON_UNREACHABLE', 'DAEMON_TIMEOUT', 'DAEMON_STARTING']).toContain(code);
    const stored = await listAll(sb, 'q');
    expect(stored).toHaveLength(acked.size);
    for (const m of stored) expect(acked.get(m.data)).toBe(m.id);
    await waitFor(() => daemonProcesses(sb.home).length === 1, 20_000, 'a single daemon for the home');
    expect(daemonProcesses(sb.home)).toEqual([sb.daemonPid()]);
    console.log('restarts', { failures: Object.fromEntries(failures) });
  });
});
