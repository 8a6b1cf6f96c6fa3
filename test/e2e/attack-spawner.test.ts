/**
 * Attacks on the spawner process (issue 8) through the real daemon: what a
 * listener's command, or its environment, can do to the one process that runs
 * every listener's commands.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRunning } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import { addListener, killLeftovers, lines, listDeliveries, mustRun, publishData, writeScript } from '../helpers/delivery.js';

const sb = useSandbox('dq-atk-');
const leftovers: number[] = [];
afterEach(async () => {
  killLeftovers(leftovers);
});

describe('attacks on the spawner', () => {
  it('a command that cannot be started because its working directory became a file fails its own attempt; the spawner and the other listeners\' running commands live on', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    await mustRun(sb, ['queue', 'create', 'other']);
    // A long command of another listener, running when the bad one is tried.
    writeScript(sb, 'long.sh', "echo $PPID >> long.ppids\necho $$ >> long.pids\ni=0; while [ ! -e release ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done\ncat >> long.got; echo >> long.got");
    const good = await addListener(sb, ['--queue', 'other', '--exec', './long.sh', '--max-attempts', '1']);
    await publishData(sb, 'other', ['kept']);
    await waitFor(() => lines(join(sb.dir, 'long.pids')).length === 1, 20_000, 'the long command running');
    const [spawner] = lines(join(sb.dir, 'long.ppids')).map(Number);

    // The working directory existed at add time; a deploy then replaced it with a file.
    const work = join(sb.dir, 'work');
    mkdirSync(work);
    const bad = await addListener(sb, ['--queue', 'orders', '--shell', '--exec', 'cat > /dev/null', '--max-attempts', '1'], work);
    rmSync(work, { recursive: true });
    writeFileSync(work, 'not a directory');
    await publishData(sb, 'orders', ['doomed']);
    const dead = await waitFor(async () => (await listDeliveries(sb, ['--listener', bad.id, '--state', 'dead']))[0], 30_000, 'the bad delivery dead');
    expect(dead.attempts).toHaveLength(1);
    // The cause, not "the spawner died": spawn refuses a cwd that is not a directory with ENOTDIR.
    expect(dead.attempts[0]!.error).toMatch(/cannot start .*ENOTDIR/);

    // The other listener's command was never killed nor rerun.
    expect(isRunning(spawner!)).toBe(true);
    expect(lines(join(sb.dir, 'long.pids'))).toHaveLength(1);
    writeFileSync(join(sb.dir, 'release'), '');
    await waitFor(() => lines(join(sb.dir, 'long.got')).includes('kept'), 20_000, 'the long command done');
    const delivered = await waitFor(async () => (await listDeliveries(sb, ['--listener', good.id, '--state', 'delivered']))[0], 20_000, 'delivered');
    expect(delivered.attempts.map((a) => a.ok)).toEqual([true]);
    expect(lines(join(sb.dir, 'long.pids'))).toHaveLength(1);
    expect(readFileSync(join(sb.dir, 'long.ppids'), 'utf8').trim()).toBe(String(spawner));
  });

  it('a command that stops its runner (kill -STOP $PPID): the attempt still ends near its timeout, on a fresh spawner the next message is delivered, and the stopped one is gone', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // Only the first run stops its runner; the reruns on a fresh spawner succeed.
    writeScript(sb, 'stopper.sh', 'echo $PPID >> ppids\nif [ ! -e stopped-once ]; then : > stopped-once; kill -STOP $PPID; exec sleep 300; fi\ncat >> got.log; echo >> got.log');
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './stopper.sh', '--timeout', '1s', '--max-attempts', '1']);
    await publishData(sb, 'orders', ['first']);
    await waitFor(() => lines(join(sb.dir, 'ppids')).length >= 1, 20_000, 'the first run');
    const [stopped] = lines(join(sb.dir, 'ppids')).map(Number);
    leftovers.push(stopped!);
    const delivered = await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']))[0], 30_000, 'delivered on a fresh spawner');
    // Not the receiver's fault: rerun as the same attempt, as for a spawner killed from outside.
    expect(delivered.attempts.map((a) => [a.attempt, a.ok])).toEqual([[1, true]]);
    expect(lines(join(sb.dir, 'got.log'))).toEqual(['first']);
    await waitFor(() => !isRunning(stopped!), 10_000, `the stopped spawner ${stopped} killed`);
    await publishData(sb, 'orders', ['second']);
    await waitFor(() => lines(join(sb.dir, 'got.log')).length === 2, 20_000, 'the next message delivered');
    expect(lines(join(sb.dir, 'got.log'))).toEqual(['first', 'second']);
  });

  it('daemon stop ends even when the spawner was stopped (SIGSTOP) under a command with a long timeout', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'stopper.sh', 'echo $PPID >> ppids\nkill -STOP $PPID\nsleep 300');
    await addListener(sb, ['--queue', 'orders', '--exec', './stopper.sh', '--timeout', '30m']);
    await publishData(sb, 'orders', ['first']);
    await waitFor(() => lines(join(sb.dir, 'ppids')).length === 1, 20_000, 'the run');
    const [stopped] = lines(join(sb.dir, 'ppids')).map(Number);
    leftovers.push(stopped!);
    await waitFor(() => readFileSync(`/proc/${stopped}/stat`, 'utf8').split(') ')[1]!.startsWith('T'), 10_000, 'the spawner stopped');
    const daemon = sb.daemonPid()!;
    const stop = await sb.run(['daemon', 'stop'], { timeoutMs: 40_000 });
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor(() => !isRunning(daemon), 10_000, 'the daemon gone');
    await waitFor(() => !isRunning(stopped!), 10_000, `the stopped spawner ${stopped} gone`);
  });

  it('the spawner killed -9 eight times during a stream of deliveries to two listeners (concurrency 4): every message is delivered to each, duplicates only from runs in flight at a kill', async () => {
    const N = 200;
    const KILLS = 8;
    await mustRun(sb, ['queue', 'create', 'orders']);
    for (const name of ['a', 'b']) {
      writeScript(sb, `${name}.sh`, `echo $PPID >> ppids\nd=$(cat)\nsleep 0.05\necho "$d" >> got-${name}.log`);
      await addListener(sb, ['--queue', 'orders', '--name', name, '--exec', `./${name}.sh`, '--concurrency', '4', '--retry-delay', '100ms']);
    }
    const datas = Array.from({ length: N }, (_, i) => `m${i}`);
    await publishData(sb, 'orders', datas);
    const killed = new Set<number>();
    const daemon = sb.daemonPid()!;
    for (let k = 0; k < KILLS; k++) {
      const target = Math.floor(((k + 1) * N) / (KILLS + 2));
      const done = () => new Set(lines(join(sb.dir, 'got-a.log'))).size + new Set(lines(join(sb.dir, 'got-b.log'))).size;
      await waitFor(() => done() >= target * 2 || done() >= 2 * N, 60_000, `${target} deliveries per listener`);
      if (done() >= 2 * N) break;
      const spawner = Number(lines(join(sb.dir, 'ppids')).at(-1));
      if (killed.has(spawner) || spawner === daemon) continue;
      try {
        process.kill(spawner, 'SIGKILL');
        killed.add(spawner);
      } catch {
        // it finished its work meanwhile: no kill this round
      }
    }
    for (const name of ['a', 'b']) {
      const delivered = await waitFor(
        async () => {
          const list = await listDeliveries(sb, ['--listener', name, '--state', 'delivered', '--limit', '1000']);
          return list.length === N ? list : undefined;
        },
        60_000,
        `all ${N} delivered to ${name}`,
      );
      expect(delivered).toHaveLength(N);
      const got = lines(join(sb.dir, `got-${name}.log`));
      // A run whose spawner died before it wrote all of stdin sees EOF on part of the
      // data (the pipe's writer is gone); it is killed with its group and run again.
      // Such a run may leave a cut datum behind: only a prefix of a real one.
      const cut = got.filter((d) => !datas.includes(d));
      for (const d of cut) expect(datas.some((full) => full.startsWith(d)), `"${d}" is a prefix of a datum`).toBe(true);
      expect(cut.length).toBeLessThanOrEqual(killed.size * 4);
      expect(new Set(got.filter((d) => datas.includes(d)))).toEqual(new Set(datas));
      // At most the runs in flight at each kill (4 per listener) ran twice.
      expect(got.length - N).toBeLessThanOrEqual(killed.size * 4);
    }
    expect(killed.size).toBeGreaterThanOrEqual(3);
    expect(sb.daemonPid()).toBe(daemon);
    expect(isRunning(daemon)).toBe(true);
  });

  it('commands that close stdin under 256 KiB of data, print 1.1 MB without a newline, or leave 50 children holding the pipes: each delivered on its first attempt, within its timeout', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'closer.sh', 'exec 0<&-\necho closed');
    writeScript(sb, 'longline.sh', "head -c 1100000 /dev/zero | tr '\\0' x");
    writeScript(sb, 'forker.sh', 'i=0\nwhile [ $i -lt 50 ]; do sleep 300 & echo $! >> kids.pids; i=$((i+1)); done\necho forked');
    const ls = {
      closer: await addListener(sb, ['--queue', 'orders', '--exec', './closer.sh', '--max-attempts', '1', '--timeout', '10s']),
      longline: await addListener(sb, ['--queue', 'orders', '--exec', './longline.sh', '--max-attempts', '1', '--timeout', '10s']),
      // Waiting for the pipes to close would take 300 s: far past this timeout.
      forker: await addListener(sb, ['--queue', 'orders', '--exec', './forker.sh', '--max-attempts', '1', '--timeout', '10s']),
    };
    const data = 'z'.repeat(256 * 1024);
    await publishData(sb, 'orders', [data]);
    try {
      for (const [name, l] of Object.entries(ls)) {
        const d = await waitFor(
          async () =>
            (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']))[0] ??
            (await listDeliveries(sb, ['--listener', l.id, '--state', 'dead']))[0],
          40_000,
          `${name} settled`,
        );
        expect(d.state, `${name}: ${JSON.stringify(d.attempts)}`).toBe('delivered');
        expect(d.attempts.map((a) => [a.ok, a.exitCode])).toEqual([[true, 0]]);
        expect(d.attempts[0]!.output!.length).toBeLessThanOrEqual(4096);
      }
      expect((await listDeliveries(sb, ['--listener', ls.longline.id, '--state', 'delivered']))[0]!.attempts[0]!.output).toMatch(/^…x+$/);
      expect(lines(join(sb.dir, 'kids.pids'))).toHaveLength(50);
    } finally {
      leftovers.push(...lines(join(sb.dir, 'kids.pids')).map(Number));
    }
  });

  it('kill -9 of the daemon while commands run: the spawner and the commands\' groups go too (no orphans), and the next daemon delivers the message again', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(
      sb,
      'held.sh',
      [
        'echo $PPID >> ppids',
        "sh -c 'echo $$ >> held.pids; i=0; while [ ! -e release ] && [ $i -lt 3000 ]; do sleep 0.1; i=$((i+1)); done'",
        // One write per line: three commands append at once.
        'd=$(cat)',
        'echo "$d" >> got.log',
      ].join('\n'),
    );
    await addListener(sb, ['--queue', 'orders', '--exec', './held.sh', '--concurrency', '3']);
    await publishData(sb, 'orders', ['a', 'b', 'c']);
    await waitFor(() => lines(join(sb.dir, 'held.pids')).length === 3, 20_000, 'three commands running');
    const [spawner] = lines(join(sb.dir, 'ppids')).map(Number);
    const held = lines(join(sb.dir, 'held.pids')).map(Number);
    leftovers.push(spawner!, ...held);
    const daemon = sb.daemonPid()!;
    process.kill(daemon, 'SIGKILL');
    await waitFor(() => !isRunning(daemon), 10_000, 'the daemon gone');
    // The spawner sees its IPC channel close and takes its commands' groups along.
    await waitFor(() => !isRunning(spawner!), 10_000, `the spawner ${spawner} gone`);
    for (const pid of held) await waitFor(() => !isRunning(pid), 10_000, `command process ${pid} gone`);
    expect(lines(join(sb.dir, 'got.log'))).toEqual([]);

    writeFileSync(join(sb.dir, 'release'), '');
    // Any command starts the next daemon, which resumes the three deliveries.
    await mustRun(sb, ['queue', 'list']);
    await waitFor(() => lines(join(sb.dir, 'got.log')).length === 3, 30_000, 'the three messages delivered by the next daemon');
    expect(lines(join(sb.dir, 'got.log')).sort()).toEqual(['a', 'b', 'c']);
  });

  it('DISCUE_MESSAGE at the environment cap: an envelope of exactly 96 KiB carries the data, one byte more carries it without; both commands run', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // Saves the environment's envelope and stdin, to compare in the test.
    writeScript(sb, 'env.sh', 'printf "%s" "$DISCUE_MESSAGE" > "env-$DISCUE_MESSAGE_ID"\ncat > "in-$DISCUE_MESSAGE_ID"');
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './env.sh', '--max-attempts', '1']);
    const CAP = 96 * 1024;
    // Quotes and multi-byte characters: JSON escaping and UTF-8 make bytes differ from characters.
    const unit = '"é\\𝄞';
    // Publish one to learn the envelope's shape, then size the data around the cap.
    const [probe] = await publishData(sb, 'orders', ['probe']);
    await waitFor(() => lines(join(sb.dir, `env-${probe}`)).length === 1, 20_000, 'the probe delivered');
    const shape = JSON.parse(readFileSync(join(sb.dir, `env-${probe}`), 'utf8')) as Record<string, unknown>;
    const overhead = Buffer.byteLength(JSON.stringify({ ...shape, data: '' }));
    let data = unit.repeat(Math.floor((CAP - overhead) / Buffer.byteLength(JSON.stringify(unit).slice(1, -1))));
    data += 'a'.repeat(CAP - overhead - Buffer.byteLength(JSON.stringify(data).slice(1, -1)));
    const [atCap] = await publishData(sb, 'orders', [data]);
    const [over] = await publishData(sb, 'orders', [data + 'a']);
    for (const id of [atCap!, over!]) {
      await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered', '--limit', '10'])).some((d) => d.messageId === id), 30_000, `${id} delivered`);
    }
    const envAt = JSON.parse(readFileSync(join(sb.dir, `env-${atCap}`), 'utf8')) as { data?: string };
    expect(Buffer.byteLength(readFileSync(join(sb.dir, `env-${atCap}`), 'utf8'))).toBe(CAP);
    expect(envAt.data).toBe(data);
    const envOver = JSON.parse(readFileSync(join(sb.dir, `env-${over}`), 'utf8')) as { id: string; data?: string };
    expect(envOver.id).toBe(over);
    expect(envOver.data).toBeUndefined();
    expect(readFileSync(join(sb.dir, `in-${atCap}`), 'utf8')).toBe(data);
    expect(readFileSync(join(sb.dir, `in-${over}`), 'utf8')).toBe(data + 'a');
  });
});
