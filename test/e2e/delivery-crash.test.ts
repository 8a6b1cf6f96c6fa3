/**
 * At-least-once across `kill -9`: 5,000 messages published in NDJSON batches
 * to a queue with two HTTP listeners and one command listener; the daemon is
 * killed with SIGKILL mid-run and started again by the next command. Every
 * message the publisher got an id for must reach every listener; duplicates
 * are counted and reported, and may only be messages around the kill.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import { addListener, closeAllServers, lines, mustRun, runJson, startHookServer, writeScript } from '../helpers/delivery.js';
import type { Received } from '../helpers/delivery.js';

const sb = useBackendSandbox('dq-crash-');
let progress: NodeJS.Timeout | undefined;
afterEach(async () => {
  clearInterval(progress);
  await closeAllServers();
});

interface Tally {
  name: string;
  received: string[];
}

function summarize(t: Tally, acked: string[]) {
  const seen = new Map<string, number>();
  for (const id of t.received) seen.set(id, (seen.get(id) ?? 0) + 1);
  const missing = acked.filter((id) => !seen.has(id));
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  const extra = [...seen].reduce((sum, [, n]) => sum + n - 1, 0);
  return { seen, missing, duplicated, extra };
}

describeBackends('kill -9 of the daemon during delivery', (backend) => {
  // NATS: what the killed daemon had out is the server's again only after the listener's ack_wait
  // (its --timeout plus 10 s), and each message of an ordered listener costs an ack round trip; so
  // fewer messages, and a 2 s timeout, make the same check in a time the suite can afford.
  const nats = backend.kind === 'nats';
  const TOTAL = nats ? 1000 : 5000;
  const BATCH = nats ? 250 : 500;
  const timeout = nats ? ['--timeout', '2s'] : [];

  // Each message costs a process spawn for the command listener, the slowest part of the run: it
  // gets 8 at a time (the spawner forks, not the daemon), and publishes go in batches of 500 so the
  // CLI starts 10 times, not 25. The time allowed is for a busy machine; every wait is for a
  // condition and ends as soon as it holds.
  it(`loses nothing: ${TOTAL} messages, two HTTP listeners and a command listener`, { timeout: 400_000 }, async () => {
    const CMD_CONCURRENCY = 8;
    await mustRun(sb, ['queue', 'create', 'load']);
    const httpA = await startHookServer();
    const httpB = await startHookServer();
    writeScript(sb, 'rec.sh', 'printf "%s\\n" "$DISCUE_MESSAGE_ID" >> cmd.log');
    await addListener(sb, ['--queue', 'load', '--url', httpA.url, '--name', 'http-a', '--retry-delay', '50ms', ...timeout]);
    await addListener(sb, ['--queue', 'load', '--url', httpB.url, '--name', 'http-b', '--retry-delay', '50ms', ...timeout]);
    await addListener(sb, ['--queue', 'load', '--exec', './rec.sh', '--name', 'cmd', '--retry-delay', '50ms', '--concurrency', String(CMD_CONCURRENCY), ...timeout]);
    const cmdLog = join(sb.dir, 'cmd.log');
    // Lines the command listener wrote, from the file size alone: each is a 26-character id and a
    // newline, appended whole. Polled every 25 ms, re-reading and splitting the whole log would take
    // CPU from the receivers and the daemon this test is measuring.
    const cmdCount = () => {
      try {
        return Math.floor(statSync(cmdLog).size / 27);
      } catch {
        return 0;
      }
    };
    // DQ_PROGRESS=1 prints what each listener has every 2 s (for a run that seems stuck).
    const t0 = Date.now();
    progress = process.env.DQ_PROGRESS
      ? setInterval(() => console.log(Date.now() - t0, httpA.delivered.length, httpB.delivered.length, cmdCount()), 2000)
      : undefined;

    const acked: string[] = [];
    let publishing = false;
    let publisherDone = false;
    let failedPublishes = 0;
    let killedPid: number | undefined;
    let killedAt = { a: 0, b: 0, cmd: 0 };
    const publisher = (async () => {
      for (let b = 0; b < TOTAL / BATCH; ) {
        // Spread over the first part of the run, so the kill also lands among publishes.
        if (b > 0) await waitFor(() => cmdCount() >= (b * BATCH) / 2 || killedPid !== undefined, 120_000, 'the command listener to progress');
        const input = Array.from({ length: BATCH }, (_, i) => JSON.stringify({ data: `msg ${b * BATCH + i}` })).join('\n') + '\n';
        publishing = true;
        const result = await sb.run(['publish', 'load'], { input, timeoutMs: 120_000 });
        publishing = false;
        if (result.code === 0) {
          acked.push(...result.stdout.trim().split('\n'));
          b++;
        } else {
          // Killed under it: whatever it printed was acknowledged; the batch is sent again.
          failedPublishes++;
          const printed = result.stdout.trim();
          if (printed) acked.push(...printed.split('\n'));
        }
      }
      publisherDone = true;
    })();

    // Kill in the middle of the run, while all three are delivering.
    await waitFor(
      // Preferably while a publish is under way, so that one is cut off too.
      () => httpA.delivered.length >= 300 && httpB.delivered.length >= 300 && cmdCount() >= 300 && (publishing || publisherDone),
      120_000,
      'deliveries under way',
    );
    killedPid = sb.daemonPid();
    expect(killedPid).toBeDefined();
    // The HTTP counts in the same tick as the kill: the sink runs in this process, so nothing arrives between.
    // The command log after it: read before, a test process descheduled between the read and the kill let
    // the daemon finish more commands, whose lingering acks died with it, beyond the bound below.
    killedAt = { a: httpA.requests.length, b: httpB.requests.length, cmd: 0 };
    process.kill(killedPid!, 'SIGKILL');
    killedAt.cmd = lines(cmdLog).length;
    const publishedAtKill = acked.length;
    await publisher;
    // Any command starts the daemon again; make sure one runs even if the publisher had finished.
    await mustRun(sb, ['listener', 'list']);
    expect(sb.daemonPid()).not.toBe(killedPid);

    expect(new Set(acked).size).toBe(acked.length);
    expect(acked.length).toBeGreaterThanOrEqual(TOTAL);
    const ids = (list: Received[]) => list.map((r) => r.envelope.id);
    const tallies = (): Tally[] => [
      { name: 'http-a', received: ids(httpA.delivered) },
      { name: 'http-b', received: ids(httpB.delivered) },
      { name: 'cmd', received: lines(cmdLog) },
    ];
    // The counts first (cheap): nothing can be complete before each listener has as many arrivals as acknowledged ids.
    const enough = () => httpA.delivered.length >= acked.length && httpB.delivered.length >= acked.length && cmdCount() >= acked.length;
    await waitFor(
      () => enough() && tallies().every((t) => summarize(t, acked).missing.length === 0),
      300_000,
      'every acknowledged message at every listener',
    );

    const report = tallies().map((t) => {
      const s = summarize(t, acked);
      return { listener: t.name, received: t.received.length, unique: s.seen.size, duplicates: s.extra };
    });
    console.log(
      `kill -9 after ${JSON.stringify(killedAt)} deliveries, ${publishedAtKill} published; publishes retried: ${failedPublishes}; acknowledged: ${acked.length}; ` +
        report.map((r) => `${r.listener}: ${r.received} received, ${r.unique} unique, ${r.duplicates} duplicate(s)`).join('; '),
    );
    const sorted = [...acked].sort();
    const ackedSet = new Set(acked);
    for (const t of tallies()) {
      const s = summarize(t, acked);
      expect(s.missing, t.name).toEqual([]);
      // Nothing that was never published arrives.
      expect([...s.seen.keys()].every((id) => /^[0-9A-Z]{26}$/.test(id))).toBe(true);
      if (t.name !== 'cmd') {
        // In order (first arrivals) for the default concurrency.
        const firsts = [...s.seen.keys()].filter((id) => ackedSet.has(id));
        expect(firsts, t.name).toEqual(sorted.filter((id) => s.seen.has(id)));
      }
      // Duplicates only for what was in flight at the kill: a message delivered twice had its first
      // delivery before the kill, or while it happened (up to the listener's concurrency: commands
      // already running finish even after the daemon is gone).
      const killIndex = t.name === 'http-a' ? killedAt.a + 1 : t.name === 'http-b' ? killedAt.b + 1 : killedAt.cmd + CMD_CONCURRENCY;
      const before = new Set(t.received.slice(0, killIndex));
      for (const id of s.duplicated) expect(before.has(id), `${t.name}: duplicate ${id} was first delivered before the kill`).toBe(true);
    }
    // The broker's own view agrees: every listener's cursor is at the last message.
    const listeners = await runJson<{ name?: string; progress?: { cursor?: string }[] }[]>(sb, ['listener', 'list']);
    await waitFor(
      async () => {
        const now = await runJson<{ name?: string; progress?: { cursor?: string }[] }[]>(sb, ['listener', 'list']);
        return now.every((l) => l.progress?.[0]?.cursor === sorted[sorted.length - 1]);
      },
      20_000,
      'every cursor at the last message',
    );
    expect(listeners).toHaveLength(3);
  });
});
