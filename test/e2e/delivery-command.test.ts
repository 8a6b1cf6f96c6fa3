/**
 * Command listeners through the real daemon, with real scripts: message data
 * verbatim on stdin and never on a command line (injection attempts), shell
 * operators refused without --shell, timeouts that kill the whole process
 * tree, failures and dead letters with exit codes and output, isolation of a
 * slow listener from a fast one, and order.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isRunning } from '../helpers/discue.js';
import { waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import {
  addListener,
  closeAllServers,
  killLeftovers,
  lines,
  listDeliveries,
  mustRun,
  publishData,
  range,
  runJson,
  startHookServer,
  writeScript,
} from '../helpers/delivery.js';
import type { Envelope, ListenerJson } from '../helpers/delivery.js';

const sb = useBackendSandbox('dq-cmd-');
const leftovers: number[] = [];
afterEach(async () => {
  killLeftovers(leftovers);
  await closeAllServers();
});

describeBackends('command delivery', (backend) => {
  // What does not touch the backend (the HTTP sender, the command runner, the CLI) runs on LevelDB only.
  const levelOnly = it.skipIf(backend.kind === 'nats');

  levelOnly('injection: data reaches the command verbatim on stdin and is never run', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const unique = randomBytes(6).toString('hex');
    const canary = `/tmp/pwned-${unique}`;
    const local = join(sb.dir, 'pwned');
    writeScript(sb, 'record.sh', ['cat > "got/$DISCUE_MESSAGE_ID"', 'printf "%s\\n" "$DISCUE_MESSAGE" >> envelopes.ndjson', 'printf "%s\\n" "$#:$1" >> argv.log'].join('\n'));
    mkdirSync(join(sb.dir, 'got'));
    // Single quotes make the argument literal: it is passed as is, not run.
    const l = await addListener(sb, ['--queue', 'orders', '--exec', "./record.sh '$(literal arg)'", '--name', 'rec']);
    expect(l.command).toEqual(['./record.sh', '$(literal arg)']);

    const evil = [
      '$(rm -rf ~)',
      `'; touch ${canary}'`,
      `"; touch ${canary}; echo "`,
      `\`touch ${local}-backtick\``,
      `$(touch ${local}-subst)`,
      `; touch ${local}-semi`,
      `&& touch ${local}-and | tee ${local}-pipe > ${local}-redir`,
      `\n touch ${local}-newline \n`,
      '${IFS}$HOME%s%n\\x00 -- --help',
      '-rf',
    ];
    const ids = await publishData(sb, 'orders', evil);
    await waitFor(() => lines(join(sb.dir, 'argv.log')).length >= evil.length, 20_000, 'every message handled');

    for (const [i, id] of ids.entries()) expect(readFileSync(join(sb.dir, 'got', id), 'utf8')).toBe(evil[i]);
    // argv is what `listener add` was given, never message content.
    expect(new Set(lines(join(sb.dir, 'argv.log')))).toEqual(new Set(['1:$(literal arg)']));
    const envelopes = lines(join(sb.dir, 'envelopes.ndjson')).map((x) => JSON.parse(x) as Envelope);
    expect(envelopes.map((e) => e.data)).toEqual(evil);
    // Nothing got created, and the home the first message names is intact.
    expect(existsSync(canary)).toBe(false);
    expect(readdirSync(sb.dir).filter((f) => f.startsWith('pwned'))).toEqual([]);
    expect(existsSync(sb.home)).toBe(true);
    expect((await runJson<Envelope[]>(sb, ['messages', 'list', 'orders'])).map((m) => m.data)).toEqual(evil);
  });

  it('large data (200 KiB) reaches a command on stdin; loud output (3 MB) does not fail a command that exits 0', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    mkdirSync(join(sb.dir, 'got'));
    writeScript(sb, 'big.sh', 'cat > "got/$DISCUE_MESSAGE_ID"\nprintf "%s" "$DISCUE_MESSAGE" > "got/$DISCUE_MESSAGE_ID.env"');
    writeScript(sb, 'loud.sh', 'cat > /dev/null\nhead -c 3000000 /dev/zero | tr "\\0" x\necho "the end of $DISCUE_MESSAGE_ID"');
    const big = await addListener(sb, ['--queue', 'orders', '--exec', './big.sh', '--max-attempts', '1']);
    const loud = await addListener(sb, ['--queue', 'orders', '--exec', './loud.sh', '--max-attempts', '1']);
    const large = 'é'.repeat(50_000) + 'x'.repeat(100_000) + '\n$(touch pwned)';
    const [bigId, smallId] = await publishData(sb, 'orders', [large, 'small']);
    await waitFor(
      async () =>
        (await listDeliveries(sb, ['--listener', loud.id, '--state', 'delivered'])).length === 2 &&
        (await listDeliveries(sb, ['--listener', big.id, '--state', 'delivered'])).length === 2,
      30_000,
      'both messages at both listeners',
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await listDeliveries(sb))}`);
    });
    expect(readFileSync(join(sb.dir, 'got', bigId!), 'utf8')).toBe(large);
    expect(readFileSync(join(sb.dir, 'got', smallId!), 'utf8')).toBe('small');
    // DISCUE_MESSAGE is the envelope; too large for one environment variable, it goes without data (on stdin anyway).
    const bigEnv = JSON.parse(readFileSync(join(sb.dir, 'got', `${bigId}.env`), 'utf8')) as Record<string, unknown>;
    expect(bigEnv).toMatchObject({ id: bigId, queue: 'orders' });
    expect(bigEnv.data === undefined || bigEnv.data === large).toBe(true);
    expect(JSON.parse(readFileSync(join(sb.dir, 'got', `${smallId}.env`), 'utf8'))).toMatchObject({ id: smallId, data: 'small' });
    for (const d of await listDeliveries(sb, ['--listener', loud.id, '--state', 'delivered'])) {
      expect(d.attempts).toHaveLength(1);
      expect(d.attempts[0]!.exitCode).toBe(0);
      // The tail of the output is kept, bounded.
      expect(d.attempts[0]!.output).toMatch(new RegExp(`x+the end of ${d.messageId}\\n$`));
      expect(d.attempts[0]!.output!.length).toBeLessThanOrEqual(1024);
    }
    expect(existsSync(join(sb.dir, 'pwned'))).toBe(false);
  });

  levelOnly('--shell opts into pipes, and the data still only arrives on stdin', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const local = join(sb.dir, 'pwned-shell');
    const l = await addListener(sb, ['--queue', 'orders', '--shell', '--exec', 'tr a-z A-Z | tee -a upper.log >/dev/null; echo >> upper.log']);
    // Kept as one line for /bin/sh, not split into argv.
    expect(l.command).toEqual(['tr a-z A-Z | tee -a upper.log >/dev/null; echo >> upper.log']);
    await publishData(sb, 'orders', [`hello $(touch ${local})`, `x; touch ${local}`]);
    await waitFor(() => lines(join(sb.dir, 'upper.log')).length >= 2, 20_000, 'both through the pipe');
    expect(lines(join(sb.dir, 'upper.log'))).toEqual([`HELLO $(TOUCH ${local.toUpperCase()})`, `X; TOUCH ${local.toUpperCase()}`]);
    expect(existsSync(local)).toBe(false);
  });

  levelOnly('refuses shell operators without --shell: INVALID_ARGUMENT, exit 2, nothing registered', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    for (const cmd of ['a | b', 'cat > out.txt', 'a; b', 'echo $(id)', 'echo `id`', "echo 'unterminated"]) {
      const result = await sb.run(['listener', 'add', '--queue', 'orders', '--exec', cmd]);
      expect(result.code, cmd).toBe(2);
      expect(result.stderr, cmd).toContain('[INVALID_ARGUMENT]');
      expect(result.stdout).toBe('');
    }
    const piped = await sb.run(['listener', 'add', '--queue', 'orders', '--exec', 'a | b']);
    expect(piped.stderr).toContain('--shell');
    const json = await sb.run(['listener', 'add', '--queue', 'orders', '--exec', 'a | b', '--json']);
    expect(json.code).toBe(2);
    expect((JSON.parse(json.stderr.trim().split('\n').pop()!) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
    expect(await runJson<ListenerJson[]>(sb, ['listener', 'list'])).toEqual([]);
  });

  levelOnly('a command timeout is a failed attempt and kills the whole process tree', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // A background grandchild and a foreground one, both in the command's tree.
    writeScript(
      sb,
      'hang.sh',
      [
        'sleep 300 &',
        'echo $! >> bg.pids',
        'echo "started $DISCUE_ATTEMPT"',
        'sh -c \'echo $$ >> fg.pids; exec sleep 300\'',
      ].join('\n'),
    );
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './hang.sh', '--timeout', '1s', '--max-attempts', '2', '--retry-delay', '50ms']);
    const [id] = await publishData(sb, 'orders', ['wait forever']);
    const dead = await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead']))[0], 30_000, 'dead after two timeouts');
    const pids = [...lines(join(sb.dir, 'bg.pids')), ...lines(join(sb.dir, 'fg.pids'))].map(Number);
    leftovers.push(...pids);
    expect(dead.id).toBe(`${l.id}/${id}`);
    expect(dead.attempts).toHaveLength(2);
    for (const [i, a] of dead.attempts.entries()) {
      expect(a.ok).toBe(false);
      expect(a.error).toMatch(/timed out/);
      expect(a.exitCode === undefined || a.exitCode !== 0).toBe(true);
      expect(a.durationMs).toBeGreaterThanOrEqual(950);
      expect(a.output).toContain(`started ${i + 1}`);
    }
    expect(pids).toHaveLength(4);
    for (const pid of pids) await waitFor(() => !isRunning(pid), 10_000, `process ${pid} of the timed-out tree to be gone`);
  });

  it('a failing command: exit code and output tail per attempt, dead, then retried after the fix', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'fail.sh', 'echo "oops on attempt $DISCUE_ATTEMPT" >&2\nexit 7');
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './fail.sh', '--max-attempts', '3', '--retry-delay', '30ms', '--name', 'failing']);
    const ids = await publishData(sb, 'orders', ['one', 'two']);
    const dead = await waitFor(
      async () => {
        const list = await listDeliveries(sb, ['--state', 'dead', '--listener', 'failing']);
        return list.length === 2 ? list : undefined;
      },
      30_000,
      'two dead deliveries',
    );
    for (const d of dead) {
      expect(d.attempts.map((a) => [a.attempt, a.ok, a.exitCode])).toEqual([
        [1, false, 7],
        [2, false, 7],
        [3, false, 7],
      ]);
      expect(d.attempts.map((a) => a.output?.trim())).toEqual(['oops on attempt 1', 'oops on attempt 2', 'oops on attempt 3']);
    }
    // Fixed: the script now records what it gets.
    writeScript(sb, 'fail.sh', 'cat >> fixed.log; echo >> fixed.log');
    expect((await runJson<{ retried: number }>(sb, ['deliveries', 'retry', '--all-dead', '--listener', 'failing'])).retried).toBe(2);
    await waitFor(() => lines(join(sb.dir, 'fixed.log')).length >= 2, 20_000, 'both delivered after retry');
    expect(lines(join(sb.dir, 'fixed.log')).sort()).toEqual(['one', 'two']);
    await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id])).length === 0, 10_000, 'nothing open or dead');
    const history = await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']);
    expect(history.map((d) => d.messageId).sort()).toEqual([...ids].sort());
  });

  it('isolation: a listener held on its first message does not hold up one that answers at once', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // The slow ones answer only when the test releases them (not after a fixed 10 s, which a busy
    // machine could spend on the 25 fast deliveries); the loop is bounded so nothing outlives the test.
    const release = join(sb.dir, 'release');
    writeScript(
      sb,
      'slow.sh',
      'echo "start $DISCUE_MESSAGE_ID" >> slow.log\ni=0; while [ ! -e release ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\necho "done $DISCUE_MESSAGE_ID" >> slow.log',
    );
    writeScript(sb, 'fast.sh', 'cat >> fast.log; echo >> fast.log');
    let releaseHttp!: () => void;
    const held = new Promise<void>((resolve) => (releaseHttp = resolve));
    const slowHttp = await startHookServer(() => held.then(() => ({ status: 200 })));
    const fastHttp = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--exec', './slow.sh', '--name', 'slow-cmd']);
    await addListener(sb, ['--queue', 'orders', '--url', slowHttp.url, '--name', 'slow-http']);
    await addListener(sb, ['--queue', 'orders', '--exec', './fast.sh', '--name', 'fast-cmd']);
    await addListener(sb, ['--queue', 'orders', '--url', fastHttp.url, '--name', 'fast-http']);
    const N = 25;
    await publishData(sb, 'orders', range(N, 'order-'));

    await waitFor(() => fastHttp.delivered.length === N && lines(join(sb.dir, 'fast.log')).length === N, 30_000, 'the fast listeners to get all');
    expect(lines(join(sb.dir, 'fast.log'))).toEqual(range(N, 'order-'));
    expect(fastHttp.delivered.map((r) => r.envelope.data)).toEqual(range(N, 'order-'));
    // The slow ones got their first message and are still on it (a held attempt that reaches the
    // 30 s default deadline on a very busy machine is tried again: still the first message).
    const slowLog = (kind: string) => lines(join(sb.dir, 'slow.log')).filter((x) => x.startsWith(kind));
    await waitFor(() => slowHttp.requests.length >= 1 && slowLog('start').length >= 1, 20_000, 'the slow listeners to start their first');
    expect(new Set(slowHttp.requests.map((r) => r.envelope.data))).toEqual(new Set(['order-0']));
    expect(slowLog('done')).toEqual([]);
    expect(slowHttp.delivered).toHaveLength(0);
    // Released, they go on with the next, one at a time.
    writeFileSync(release, '');
    releaseHttp();
    await waitFor(() => slowHttp.delivered.length >= 2 && slowLog('done').length >= 2, 30_000, 'the slow listeners to go on once released');
    expect(slowHttp.delivered.map((r) => r.envelope.data).slice(0, 2)).toEqual(range(2, 'order-'));
  });

  it('order: with the default concurrency each listener gets messages in publish order; --concurrency gets them all', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // Random per-message delays would reorder anything that ran in parallel.
    writeScript(sb, 'jitter.sh', 'd=$(cat)\nsleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 3 ))\nprintf "%s\\n" "$d" >> ordered.log');
    writeScript(sb, 'par.sh', 'd=$(cat)\nprintf "%s\\n" "$d" >> parallel.log');
    const http = await startHookServer(() => new Promise((resolve) => setTimeout(() => resolve({ status: 200 }), Math.floor(Math.random() * 5))));
    await addListener(sb, ['--queue', 'orders', '--exec', './jitter.sh']);
    await addListener(sb, ['--queue', 'orders', '--exec', './par.sh', '--concurrency', '4']);
    await addListener(sb, ['--queue', 'orders', '--url', http.url]);
    const expected: string[] = [];
    // Batches and single publishes, racing each other from several processes.
    const batches = await Promise.all([0, 1, 2].map((b) => publishData(sb, 'orders', range(10, `b${b}-`))));
    const singles: string[] = [];
    for (let i = 0; i < 5; i++) singles.push((await mustRun(sb, ['publish', 'orders', '--data', `s-${i}`])).trim());
    const stored = await runJson<Envelope[]>(sb, ['messages', 'list', 'orders', '--limit', '1000']);
    expected.push(...stored.map((m) => m.data));
    expect(stored.map((m) => m.id).sort()).toEqual([...batches.flat(), ...singles].sort());
    expect(expected).toHaveLength(35);

    await waitFor(
      () => lines(join(sb.dir, 'ordered.log')).length >= 35 && lines(join(sb.dir, 'parallel.log')).length >= 35 && http.delivered.length >= 35,
      60_000,
      'all three listeners to get 35',
    );
    expect(lines(join(sb.dir, 'ordered.log'))).toEqual(expected);
    expect(http.delivered.map((r) => r.envelope.data)).toEqual(expected);
    expect(lines(join(sb.dir, 'parallel.log')).sort()).toEqual([...expected].sort());
  });
});

/**
 * The attempt is the command's own process (issue 7): a background child
 * that keeps the command's output pipes open, in the command's process
 * group or escaped from it with setsid, neither turns a success into a
 * timeout nor holds the listener, the deadline, or `daemon stop`.
 */
// On LevelDB only: how the runner ends a command and its escaped children is the same whatever the backend.
describe("command delivery: the command's own exit decides, not its pipes", () => {
  /** Every pid the scripts wrote to `file`, killed at the end of the test. */
  const pidsIn = (file: string) => {
    const pids = lines(join(sb.dir, file)).map(Number);
    leftovers.push(...pids);
    return pids;
  };

  it('`sleep 300 & echo ok` is delivered once, ok, and the next message goes while the background sleep still runs', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const l = await addListener(sb, ['--queue', 'orders', '--shell', '--exec', 'sleep 300 & echo $! >> bg.pids; cat >> got.log; echo >> got.log; echo ok']);
    const ids = await publishData(sb, 'orders', ['first', 'second']);
    const delivered = await waitFor(
      async () => {
        const list = await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']);
        return list.length === 2 ? list : undefined;
      },
      20_000,
      'both delivered while the background sleeps hold the pipes',
    );
    const bg = pidsIn('bg.pids');
    expect(delivered.map((d) => d.messageId).sort()).toEqual([...ids].sort());
    for (const d of delivered) {
      expect(d.attempts.map((a) => [a.attempt, a.ok, a.exitCode, a.error])).toEqual([[1, true, 0, undefined]]);
      expect(d.attempts[0]!.output).toBe('ok\n');
    }
    expect(lines(join(sb.dir, 'got.log'))).toEqual(['first', 'second']);
    // Both background sleeps outlived their deliveries: the first did not hold up the second.
    expect(bg).toHaveLength(2);
    for (const pid of bg) expect(isRunning(pid), `background sleep ${pid}`).toBe(true);
    expect(await listDeliveries(sb, ['--listener', l.id])).toEqual([]);
  });

  it('a child escaped with setsid holding the pipes: --timeout 1s still ends the attempt, and the listener goes on', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(
      sb,
      'escape.sh',
      [
        'd=$(cat)',
        'if [ "$d" = hang ]; then',
        // A new session: out of the command's process group, out of reach of its group kill.
        "  setsid sh -c 'echo $$ >> escaped.pids; exec sleep 300' &",
        '  echo "hanging $DISCUE_ATTEMPT"',
        '  sleep 300',
        'fi',
        'echo "$d" >> done.log',
      ].join('\n'),
    );
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './escape.sh', '--timeout', '1s', '--max-attempts', '2', '--retry-delay', '50ms']);
    const [hangId, nextId] = await publishData(sb, 'orders', ['hang', 'next']);
    // Bounded far below the escapees' 300 s: the deadline is on the delivery, not on the pipes closing.
    const dead = await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'dead']))[0], 30_000, 'dead after two timeouts');
    await waitFor(() => lines(join(sb.dir, 'done.log')).includes('next'), 20_000, 'the next message delivered');
    const escaped = pidsIn('escaped.pids');
    expect(dead.messageId).toBe(hangId);
    expect(dead.attempts.map((a) => [a.attempt, a.ok, a.error])).toEqual([
      [1, false, 'timed out after 1000 ms'],
      [2, false, 'timed out after 1000 ms'],
    ]);
    expect(dead.attempts.map((a) => a.output)).toEqual(['hanging 1\n', 'hanging 2\n']);
    expect(lines(join(sb.dir, 'done.log'))).toEqual(['next']);
    const next = await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']))[0], 10_000, 'next recorded');
    expect(next.messageId).toBe(nextId);
    // They really did escape and still hold the pipes: the group kill could not reach them.
    expect(escaped).toHaveLength(2);
    for (const pid of escaped) expect(isRunning(pid), `escaped sleep ${pid}`).toBe(true);
  });

  it("`daemon stop` completes while a command's escaped child lives; the command's own group is killed", async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(
      sb,
      'stuck.sh',
      ["setsid sh -c 'echo $$ >> escaped.pids; exec sleep 300' &", "sh -c 'echo $$ >> own.pids; exec sleep 300'"].join('\n'),
    );
    await addListener(sb, ['--queue', 'orders', '--exec', './stuck.sh', '--timeout', '10m']);
    await publishData(sb, 'orders', ['stuck']);
    await waitFor(() => lines(join(sb.dir, 'escaped.pids')).length === 1 && lines(join(sb.dir, 'own.pids')).length === 1, 20_000, 'the command running');
    const escaped = pidsIn('escaped.pids');
    const own = pidsIn('own.pids');
    const daemon = sb.daemonPid()!;
    const stop = await sb.run(['daemon', 'stop']);
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor(() => !isRunning(daemon), 20_000, 'the daemon gone');
    await waitFor(() => !isRunning(own[0]!), 20_000, "the command's own sleep killed with its group");
    expect(isRunning(escaped[0]!)).toBe(true);
  });
});
