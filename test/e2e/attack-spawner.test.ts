/**
 * Attacks on the spawner process (issue 8) through the real daemon: what a
 * listener's command, or its environment, can do to the one process that runs
 * every listener's commands.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Sandbox, waitFor } from '../helpers/sandbox.js';
import { addListener, alive, lines, listDeliveries, mustRun, publishData, until, writeScript } from '../helpers/delivery.js';

let sb: Sandbox;
const leftovers: number[] = [];
beforeEach(() => {
  sb = new Sandbox('dq-atk-');
});
afterEach(async () => {
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
  await sb.dispose();
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
    const dead = await until(async () => (await listDeliveries(sb, ['--listener', bad.id, '--state', 'dead']))[0], 30_000, 'the bad delivery dead');
    expect(dead.attempts).toHaveLength(1);
    // The cause, not "the spawner died": spawn refuses a cwd that is not a directory with ENOTDIR.
    expect(dead.attempts[0]!.error).toMatch(/cannot start .*ENOTDIR/);

    // The other listener's command was never killed nor rerun.
    expect(alive(spawner!)).toBe(true);
    expect(lines(join(sb.dir, 'long.pids'))).toHaveLength(1);
    writeFileSync(join(sb.dir, 'release'), '');
    await waitFor(() => lines(join(sb.dir, 'long.got')).includes('kept'), 20_000, 'the long command done');
    const delivered = await until(async () => (await listDeliveries(sb, ['--listener', good.id, '--state', 'delivered']))[0], 20_000, 'delivered');
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
    const delivered = await until(async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']))[0], 30_000, 'delivered on a fresh spawner');
    // Not the receiver's fault: rerun as the same attempt, as for a spawner killed from outside.
    expect(delivered.attempts.map((a) => [a.attempt, a.ok])).toEqual([[1, true]]);
    expect(lines(join(sb.dir, 'got.log'))).toEqual(['first']);
    await waitFor(() => !alive(stopped!), 10_000, `the stopped spawner ${stopped} killed`);
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
    await waitFor(() => !alive(daemon), 10_000, 'the daemon gone');
    await waitFor(() => !alive(stopped!), 10_000, `the stopped spawner ${stopped} gone`);
  });
});
