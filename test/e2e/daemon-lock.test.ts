/**
 * One daemon per home rests on the daemon's own lock (run/daemon.lock), not on
 * LevelDB's lock nor on the socket: two daemons given different data
 * directories and different sockets for one home still make one daemon, and
 * a lock left by a killed daemon does not keep the next one out. `daemon
 * repair` takes the same lock: refused while it is held, nothing copied.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { daemonProcesses, expectError, ok, waitForExit } from '../helpers/discue.js';
import { collect, useSandbox, waitFor } from '../helpers/sandbox.js';

describe('daemon lock', () => {
  const sb = useSandbox();

  const lockFile = (): string => join(sb.home, 'run', 'daemon.lock');
  const lockPid = (): number => Number.parseInt(readFileSync(lockFile(), 'utf8'), 10);
  /** A foreground daemon with its own data directory and socket, so only the home lock is shared. */
  const foreground = (n: number) =>
    sb.spawn(['daemon', 'start', '--foreground', '--data-dir', join(sb.dir, `data${n}`)], {
      env: { DISCUE_SOCKET: join(sb.dir, `s${n}.sock`) },
    });

  it('refuses a second daemon for the home even with another data directory and socket', async () => {
    const first = foreground(1);
    const firstExit = collect(first, { timeoutMs: 60_000 });
    await waitFor(() => existsSync(join(sb.dir, 's1.sock')) && sb.daemonPid() === first.pid, 20_000, 'the first daemon');
    expect(lockPid()).toBe(first.pid);

    const second = await collect(foreground(2), { timeoutMs: 60_000 });
    expectError(second, 1, 'ALREADY_RUNNING');
    expect(second.stderr).toContain(`pid ${first.pid}`);
    expect(existsSync(join(sb.dir, 's2.sock'))).toBe(false);
    expect(daemonProcesses(sb.home)).toEqual([first.pid]);

    first.kill('SIGTERM');
    expect((await firstExit).code).toBe(0);
    // A clean stop leaves no lock behind.
    expect(existsSync(lockFile())).toBe(false);
  });

  it('gives one daemon when two start at once for one home', async () => {
    const children = [foreground(1), foreground(2)];
    const exits = children.map((child) => collect(child, { timeoutMs: 60_000 }));
    // Exactly one exits, refused; the other serves.
    const refused = await Promise.race(exits.map((exit, i) => exit.then((result) => ({ result, i }))));
    expectError(refused.result, 1, 'ALREADY_RUNNING');
    const winner = children[1 - refused.i]!;
    await waitFor(() => sb.daemonPid() === winner.pid, 20_000, 'the winning daemon');
    expect(lockPid()).toBe(winner.pid);
    expect(daemonProcesses(sb.home)).toEqual([winner.pid]);
  });

  it('a lock left by a daemon killed with SIGKILL does not keep the next daemon out', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const killed = sb.daemonPid()!;
    expect(lockPid()).toBe(killed);
    process.kill(killed, 'SIGKILL');
    await waitForExit(killed);
    expect(lockPid()).toBe(killed);

    await ok(sb, ['queue', 'show', 'q']);
    const next = sb.daemonPid()!;
    expect(next).not.toBe(killed);
    expect(lockPid()).toBe(next);
  });

  const backups = (dir: string, name: string): string[] => readdirSync(dir).filter((n) => n.startsWith(`${name}.bak-`));

  it('`daemon repair` is refused, touching nothing, while a daemon holds the lock (even one on another socket)', async () => {
    const first = foreground(1);
    const firstExit = collect(first, { timeoutMs: 60_000 });
    await waitFor(() => existsSync(join(sb.dir, 's1.sock')) && lockPid() === first.pid, 20_000, 'the daemon');

    // Its socket is not the one the repair would look at: only the lock tells.
    const repair = await sb.run(['daemon', 'repair', '--store', join(sb.dir, 'data1')]);
    expectError(repair, 1, 'ALREADY_RUNNING');
    expect(repair.stderr).toContain(`pid ${first.pid}`);
    expect(repair.stderr).toContain('discue daemon stop');
    expect(backups(sb.dir, 'data1')).toEqual([]);
    expect(lockPid()).toBe(first.pid);

    first.kill('SIGTERM');
    expect((await firstExit).code).toBe(0);
    const after = await sb.run(['daemon', 'repair', '--store', join(sb.dir, 'data1'), '--json']);
    expect(after.code, after.stderr).toBe(0);
    expect(backups(sb.dir, 'data1')).toHaveLength(1);
    // The repair let go of the lock: nothing left behind, and a daemon starts.
    expect(existsSync(lockFile())).toBe(false);
    await ok(sb, ['queue', 'create', 'q']);
  });

  it('`daemon repair` is refused by a live lock holder alone (no pid file, no socket); a dead holder does not stop it', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    await ok(sb, ['daemon', 'stop']);
    // A live process that is no daemon holds the lock, as one would in the
    // instant between taking it and writing its pid file.
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(lockFile(), `${holder.pid}\n\n`);
      const refused = await sb.run(['daemon', 'repair']);
      expectError(refused, 1, 'ALREADY_RUNNING');
      expect(refused.stderr).toContain(`pid ${holder.pid}`);
      expect(backups(sb.home, 'data')).toEqual([]);
    } finally {
      holder.kill('SIGKILL');
    }
    await waitForExit(holder.pid!);
    const repaired = await sb.run(['daemon', 'repair', '--json']);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect((JSON.parse(repaired.stdout) as { queues: number }).queues).toBe(1);
    expect(backups(sb.home, 'data')).toHaveLength(1);
    expect(existsSync(lockFile())).toBe(false);
  });
});
