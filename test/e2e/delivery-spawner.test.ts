/**
 * The spawner process (issue 8): the daemon's command listeners run their
 * commands from a small helper process, never by forking the daemon. These
 * tests find that process as the parent ($PPID) of the commands, kill it
 * mid-delivery and check that nothing is lost, that a command killing its
 * own runner is a bounded failure, that the largest data goes through the
 * extra hop intact, and that stopping the daemon takes the spawner along.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRunning } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import { addListener, killLeftovers, lines, listDeliveries, mustRun, publishData, writeScript } from '../helpers/delivery.js';

const sb = useSandbox('dq-spawn-');
const leftovers: number[] = [];
afterEach(async () => {
  killLeftovers(leftovers);
});

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

// On LevelDB only: the spawner is the daemon's child process that runs commands, the same whatever
// the backend; the command listener's delivery on both backends is in delivery-command and delivery-http.
describe('spawner process', () => {
  it('commands are children of the spawner, not of the daemon; kill -9 of the spawner mid-delivery loses nothing and costs no attempt', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(
      sb,
      'held.sh',
      [
        'echo $PPID >> ppids',
        'echo "$DISCUE_MESSAGE_ID $DISCUE_ATTEMPT" >> runs.log',
        // The first run of the first message waits here for the test to kill its runner.
        "[ -e release ] || sh -c 'echo $$ >> held.pids; exec sleep 300'",
        'cat >> got.log; echo >> got.log',
      ].join('\n'),
    );
    // One attempt only: had the spawner's death counted as one, the message would be dead.
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './held.sh', '--max-attempts', '1']);
    const [first] = await publishData(sb, 'orders', ['first']);
    await waitFor(() => lines(join(sb.dir, 'held.pids')).length === 1, 20_000, 'the first run to be held');
    const [spawner] = lines(join(sb.dir, 'ppids')).map(Number);
    const [held] = lines(join(sb.dir, 'held.pids')).map(Number);
    leftovers.push(held!);
    const daemon = sb.daemonPid()!;
    expect(spawner).not.toBe(daemon);
    expect(cmdline(spawner!)).toContain('spawner-process.js');
    expect(readFileSync(`/proc/${spawner}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]).toBe(String(daemon));

    process.kill(spawner!, 'SIGKILL');
    writeFileSync(join(sb.dir, 'release'), '');
    await waitFor(() => lines(join(sb.dir, 'got.log')).includes('first'), 20_000, 'the first message delivered after the spawner died');
    // The orphaned run was killed with its group, not left to finish on its own.
    await waitFor(() => !isRunning(held!), 10_000, `the held run's sleep ${held} killed`);
    const [second] = await publishData(sb, 'orders', ['second']);
    await waitFor(() => lines(join(sb.dir, 'got.log')).length === 2, 20_000, 'the next message delivered by the new spawner');

    expect(lines(join(sb.dir, 'got.log'))).toEqual(['first', 'second']);
    // Run again as the same attempt, on a fresh spawner, which then stays.
    expect(lines(join(sb.dir, 'runs.log'))).toEqual([`${first} 1`, `${first} 1`, `${second} 1`]);
    const ppids = lines(join(sb.dir, 'ppids')).map(Number);
    expect(ppids[1]).not.toBe(spawner);
    expect(ppids[2]).toBe(ppids[1]);
    expect(ppids[1]).not.toBe(daemon);
    const delivered = await waitFor(
      async () => {
        const list = await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']);
        return list.length === 2 ? list : undefined;
      },
      10_000,
      'both recorded delivered',
    );
    for (const d of delivered) expect(d.attempts.map((a) => [a.attempt, a.ok, a.exitCode])).toEqual([[1, true, 0]]);
    expect(sb.daemonPid()).toBe(daemon);
    expect(isRunning(daemon)).toBe(true);
  });

  it('a command that kills its own runner every time: a bounded failed attempt, then dead; the daemon lives on', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'killer.sh', 'echo $PPID >> ppids\nkill -9 $PPID\nsleep 5');
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './killer.sh', '--max-attempts', '1']);
    const daemon = sb.daemonPid()!;
    await publishData(sb, 'orders', ['boom']);
    const dead = await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'dead']))[0], 30_000, 'dead');
    expect(dead.attempts).toHaveLength(1);
    expect(dead.attempts[0]!.ok).toBe(false);
    expect(dead.attempts[0]!.error).toMatch(/spawner process \d+\) was killed by SIGKILL; it died 3 times while running this attempt/);
    // Three runs, each on a fresh spawner.
    expect(new Set(lines(join(sb.dir, 'ppids'))).size).toBe(3);
    expect(sb.daemonPid()).toBe(daemon);
    expect(isRunning(daemon)).toBe(true);
  });

  it('the largest data (256 KiB) reaches the command intact through the spawner; megabytes of output keep only the tail', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'sum.sh', 'sha256sum | cut -d" " -f1 > "sum-$DISCUE_MESSAGE_ID"\nhead -c 8000000 /dev/zero | tr "\\0" y\necho "end $DISCUE_MESSAGE_ID" >&2');
    const l = await addListener(sb, ['--queue', 'orders', '--exec', './sum.sh', '--max-attempts', '1']);
    // Multi-byte characters across the whole 256 KiB, so a cut or a re-encoding would show.
    const unit = 'ü€𝄞x';
    let data = unit.repeat(Math.floor((256 * 1024) / Buffer.byteLength(unit)));
    data += 'z'.repeat(256 * 1024 - Buffer.byteLength(data));
    expect(Buffer.byteLength(data)).toBe(256 * 1024);
    const [id] = await publishData(sb, 'orders', [data]);
    const d = await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered']))[0], 30_000, 'delivered');
    expect(readFileSync(join(sb.dir, `sum-${id}`), 'utf8').trim()).toBe(createHash('sha256').update(data).digest('hex'));
    expect(d.attempts[0]!.exitCode).toBe(0);
    expect(d.attempts[0]!.output).toMatch(new RegExp(`y+end ${id}\\n$`));
    expect(d.attempts[0]!.output!.length).toBeLessThanOrEqual(1024);
  });

  it('daemon stop ends the spawner and kills the process groups of the commands it runs', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    writeScript(sb, 'long.sh', "echo $PPID >> ppids\nsleep 300 &\necho $! >> bg.pids\nsh -c 'echo $$ >> fg.pids; exec sleep 300'");
    await addListener(sb, ['--queue', 'orders', '--exec', './long.sh', '--timeout', '10m']);
    await publishData(sb, 'orders', ['long']);
    await waitFor(() => lines(join(sb.dir, 'fg.pids')).length === 1 && lines(join(sb.dir, 'bg.pids')).length === 1, 20_000, 'the command running');
    const [spawner] = lines(join(sb.dir, 'ppids')).map(Number);
    const tree = [...lines(join(sb.dir, 'fg.pids')), ...lines(join(sb.dir, 'bg.pids'))].map(Number);
    leftovers.push(...tree);
    const stop = await sb.run(['daemon', 'stop']);
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor(() => !isRunning(spawner!), 20_000, `the spawner ${spawner} gone`);
    for (const pid of tree) await waitFor(() => !isRunning(pid), 20_000, `process ${pid} of the running command gone`);
  });
});
