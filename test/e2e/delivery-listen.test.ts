/**
 * Foreground `discue listen`: a real process attached to the real daemon.
 * Printing data lines, NDJSON envelopes, --count, --timeout (124), --grep,
 * all queues (including one created later), Ctrl-C (130), durable --name,
 * and --exec per message in order.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { collect, waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import type { RunResult } from '../helpers/sandbox.js';
import { lines, mustRun, publishData, range, runJson, writeScript } from '../helpers/delivery.js';
import type { Envelope } from '../helpers/delivery.js';

const sb = useBackendSandbox('dq-listen-');

interface Live {
  child: ChildProcess;
  out(): string;
  done: Promise<RunResult>;
}

/** Starts `discue listen ...` and collects its output as it comes. */
function startListen(args: string[]): Live {
  const child = sb.spawn(['listen', ...args]);
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const done = collect(child, { timeoutMs: 60_000 });
  return { child, out: () => stdout, done };
}

/** Waits until `n` foreground listens are connected to the daemon. */
async function connected(n = 1): Promise<void> {
  await waitFor(
    async () => {
      const r = await sb.run(['listener', 'list', '--json']);
      if (r.code !== 0) return false;
      const list = JSON.parse(r.stdout) as { kind: string; connected?: boolean }[];
      return list.filter((l) => l.kind === 'stream' && l.connected).length >= n;
    },
    20_000,
    `${n} listen connection(s)`,
  );
}

describeBackends('discue listen', (backend) => {
  // What does not touch the backend (the HTTP sender, the command runner, the CLI) runs on LevelDB only.
  const levelOnly = it.skipIf(backend.kind === 'nats');

  it('prints each new message data on its own line; Ctrl-C exits 130', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    await publishData(sb, 'orders', ['before it started']);
    const live = startListen(['orders']);
    await connected();
    await publishData(sb, 'orders', ['one', 'two words', 'ends with newline\n']);
    await mustRun(sb, ['publish', 'orders', '--data', 'multi\nline']);
    await waitFor(() => live.out().split('\n').length >= 6, 20_000, 'four messages printed');
    live.child.kill('SIGINT');
    const result = await live.done;
    expect(result.code).toBe(130);
    expect(result.stdout).toBe('one\ntwo words\nends with newline\nmulti\nline\n');
  });

  it('--json prints NDJSON envelopes; --count N exits 0 after N', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const live = startListen(['orders', '--json', '--count', '2']);
    await connected();
    await mustRun(sb, ['publish', 'orders', '--data', 'first', '--name', 'order.created']);
    await publishData(sb, 'orders', ['second', 'third']);
    const result = await live.done;
    expect(result.code).toBe(0);
    const printed = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as Envelope);
    const stored = await runJson<Envelope[]>(sb, ['messages', 'list', 'orders']);
    expect(printed).toEqual(stored.slice(0, 2));
    expect(printed[0]!.name).toBe('order.created');
  });

  it('--timeout exits 124 when no message comes', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    await publishData(sb, 'orders', ['old news']);
    const result = await sb.run(['listen', 'orders', '--timeout', '1s']);
    expect(result.code).toBe(124);
    expect(result.stdout).toBe('');
    // --count not reached in time is a timeout too.
    const live = startListen(['orders', '--count', '3', '--timeout', '3s']);
    await connected();
    await publishData(sb, 'orders', ['only one']);
    const partial = await live.done;
    expect(partial.code).toBe(124);
    expect(partial.stdout).toBe('only one\n');
  });

  levelOnly('--grep prints only matching messages and counts only those', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const live = startListen(['orders', '--grep', '^shipped', '--count', '2']);
    await connected();
    await publishData(sb, 'orders', ['paid 1', 'shipped 1', 'refunded shipped', 'paid 2', 'shipped 2', 'shipped 3']);
    const result = await live.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('shipped 1\nshipped 2\n');
  });

  it('with no queue, listens to every queue, including one created after it started', async () => {
    await mustRun(sb, ['queue', 'create', 'payments']);
    const live = startListen(['--count', '3']);
    await connected();
    await mustRun(sb, ['publish', 'payments', '--data', 'from payments']);
    await waitFor(() => live.out().includes('from payments'), 20_000, 'the first message');
    await mustRun(sb, ['queue', 'create', 'shipping']);
    await mustRun(sb, ['publish', 'shipping', '--data', 'from shipping']);
    await mustRun(sb, ['publish', 'payments', '--data', 'payments again']);
    const result = await live.done;
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n').sort()).toEqual(['from payments', 'from shipping', 'payments again']);
  });

  it('--name is durable: after Ctrl-C, the same command gets exactly what it missed', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const first = startListen(['orders', '--name', 'ci-watch']);
    await connected();
    await publishData(sb, 'orders', ['m1', 'm2']);
    await waitFor(() => first.out() === 'm1\nm2\n', 20_000, 'the first two');
    first.child.kill('SIGINT');
    expect((await first.done).code).toBe(130);

    // While it is away: the named listener is kept, disconnected.
    const away = await runJson<{ name?: string; kind: string; connected?: boolean }[]>(sb, ['listener', 'list']);
    expect(away.find((l) => l.name === 'ci-watch')).toMatchObject({ kind: 'stream', connected: false });
    await publishData(sb, 'orders', ['m3', 'm4', 'm5']);

    const second = startListen(['orders', '--name', 'ci-watch']);
    await waitFor(() => second.out().split('\n').length >= 4, 20_000, 'the three missed ones');
    // Then a new one, to show nothing else (m1, m2 again) comes before or between.
    await mustRun(sb, ['publish', 'orders', '--data', 'm6']);
    await waitFor(() => second.out().split('\n').length >= 5, 20_000, 'the new one');
    second.child.kill('SIGINT');
    const result = await second.done;
    expect(result.code).toBe(130);
    expect(result.stdout).toBe('m3\nm4\nm5\nm6\n');
  });

  it('a second listen with the same --name is refused while the first is connected', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const first = startListen(['orders', '--name', 'solo']);
    await connected();
    const second = await sb.run(['listen', 'orders', '--name', 'solo', '--timeout', '5s']);
    expect(second.code).toBe(5);
    expect(second.stderr).toContain('[LISTENER_EXISTS]');
    first.child.kill('SIGINT');
    expect((await first.done).code).toBe(130);
  });

  it('--exec runs the command once per message, in order, with data on stdin', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'handle.sh', 'd=$(cat)\nsleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 4 ))\nprintf "%s|%s\\n" "$d" "$DISCUE_QUEUE" >> handled.log\necho "handled $d"');
    const live = startListen(['orders', '--exec', './handle.sh', '--count', '12']);
    await connected();
    const data = [...range(10, 'job-'), '$(touch pwned)', "'; touch pwned'"];
    await publishData(sb, 'orders', data);
    const result = await live.done;
    expect(result.code).toBe(0);
    expect(lines(join(sb.dir, 'handled.log'))).toEqual(data.map((d) => `${d}|orders`));
    // The command's output is passed through.
    expect(result.stdout).toContain('handled job-0\n');
    expect(lines(join(sb.dir, 'pwned'))).toEqual([]);
  });

  levelOnly('--exec passes the command output through whole, stdout to stdout and stderr to stderr', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'talk.sh', 'd=$(cat)\ni=0\nwhile [ $i -lt 300 ]; do echo "$d line $i of some output"; i=$((i+1)); done\necho "warning for $d" >&2');
    const live = startListen(['orders', '--exec', './talk.sh', '--count', '2']);
    await connected();
    await publishData(sb, 'orders', ['a', 'b']);
    const result = await live.done;
    expect(result.code).toBe(0);
    const expected = ['a', 'b'].flatMap((d) => Array.from({ length: 300 }, (_, i) => `${d} line ${i} of some output`));
    expect(result.stdout.trim().split('\n')).toEqual(expected);
    expect(result.stderr).toContain('warning for a');
    expect(result.stderr).toContain('warning for b');
  });

  it('--exec acknowledges only after the command succeeds: a failure stops listen, and --name gets it again', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // Fails on "bad" the first time only.
    writeScript(sb, 'once.sh', 'd=$(cat)\nif [ "$d" = bad ] && [ ! -e failed-once ]; then touch failed-once; echo "cannot handle $d" >&2; exit 3; fi\nprintf "%s\\n" "$d" >> handled.log');
    const first = startListen(['orders', '--name', 'worker', '--exec', './once.sh']);
    await connected();
    await publishData(sb, 'orders', ['a', 'bad', 'c']);
    const failed = await first.done;
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('cannot handle bad');
    expect(failed.stderr).toContain('[DELIVERY_FAILED]');
    expect(lines(join(sb.dir, 'handled.log'))).toEqual(['a']);

    const second = await sb.run(['listen', 'orders', '--name', 'worker', '--exec', './once.sh', '--count', '2', '--timeout', '20s']);
    expect(second.code, second.stderr).toBe(0);
    expect(lines(join(sb.dir, 'handled.log'))).toEqual(['a', 'bad', 'c']);
  });

  levelOnly('--exec refuses shell operators without --shell', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const result = await sb.run(['listen', 'orders', '--exec', 'cat | wc -l', '--timeout', '5s']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('[INVALID_ARGUMENT]');
  });
});
