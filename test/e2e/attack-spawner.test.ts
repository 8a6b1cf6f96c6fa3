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
});
