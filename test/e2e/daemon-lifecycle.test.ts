/**
 * The daemon's life: auto-start, idempotent start, one daemon per home under
 * a start race, stale files after kill -9, clean SIGTERM, permissions,
 * stop/restart/status/logs, and the protocol handshake.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RawClient, daemonProcesses, expectError, isRunning, listAll, ok, statusPid, waitForExit } from '../helpers/discue.js';
import { BIN, collect, useSandbox, waitFor } from '../helpers/sandbox.js';

describe('daemon lifecycle', () => {
  const sb = useSandbox();

  it('starts by itself on the first command, and `daemon start` is idempotent', async () => {
    expect((await sb.run(['daemon', 'status'])).code).toBe(3);
    expect(existsSync(sb.socket)).toBe(false);
    await ok(sb, ['queue', 'list']);
    const pid = sb.daemonPid();
    expect(pid).toBeGreaterThan(0);
    expect(isRunning(pid!)).toBe(true);
    expect(await statusPid(sb)).toBe(pid);

    const first = JSON.parse(await ok(sb, ['daemon', 'start', '--json'])) as { started: boolean; pid: number };
    const second = JSON.parse(await ok(sb, ['daemon', 'start', '--json'])) as { started: boolean; pid: number };
    expect([first.started, second.started]).toEqual([false, false]);
    expect([first.pid, second.pid]).toEqual([pid, pid]);
    expect((await ok(sb, ['daemon', 'start'])).trim()).toContain(`already running (pid ${pid})`);
    expect(daemonProcesses(sb.home)).toEqual([pid]);
  });

  it('keeps its socket directory 0700 and its socket 0600', async () => {
    await ok(sb, ['daemon', 'start']);
    expect(statSync(join(sb.home, 'run')).mode & 0o777).toBe(0o700);
    const socket = statSync(sb.socket);
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o600);
  });

  it('runs in the foreground, serves requests, and exits 0 on SIGTERM leaving no pid file or socket', async () => {
    const daemon = sb.spawn(['daemon', 'start', '--foreground']);
    const exited = collect(daemon, { timeoutMs: 60_000 });
    await waitFor(() => existsSync(sb.socket) && sb.daemonPid() === daemon.pid, 20_000, 'the foreground daemon');
    await ok(sb, ['queue', 'create', 'q']);
    const ids = (await ok(sb, ['publish', 'q'], '{"data":"a"}\n{"data":"b"}\n')).trim().split('\n');
    expect(await statusPid(sb)).toBe(daemon.pid);

    // A second foreground daemon for the same home is refused with a documented code.
    const second = await sb.run(['daemon', 'start', '--foreground']);
    expectError(second, 1, 'ALREADY_RUNNING');

    daemon.kill('SIGTERM');
    const result = await exited;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('daemon stopped');
    expect(existsSync(join(sb.home, 'run', 'daemon.pid'))).toBe(false);
    expect(existsSync(sb.socket)).toBe(false);

    // Data intact after the next (auto-)start.
    const stored = await listAll(sb, 'q');
    expect(stored.map((m) => [m.id, m.data])).toEqual([
      [ids[0], 'a'],
      [ids[1], 'b'],
    ]);
    expect(sb.daemonPid()).not.toBe(daemon.pid);
  });

  it('starts exactly one daemon when ten commands race on a fresh home', async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2 === 0 ? sb.run(['queue', 'list', '--json']) : sb.run(['daemon', 'start']),
      ),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const pid = sb.daemonPid();
    expect(await statusPid(sb)).toBe(pid);
    // Losers of the race (if any were spawned) have exited by now.
    await waitFor(() => daemonProcesses(sb.home).length === 1, 20_000, 'a single daemon');
    expect(daemonProcesses(sb.home)).toEqual([pid]);
    expect(sb.log().match(/daemon started/g)).toHaveLength(1);
  });

  it('replaces the stale socket and pid file of a daemon killed with SIGKILL', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const id = (await ok(sb, ['publish', 'q', '--data', 'before the crash'])).trim();
    const old = sb.daemonPid()!;
    process.kill(old, 'SIGKILL');
    await waitForExit(old);
    // What a killed daemon leaves behind.
    expect(existsSync(sb.socket)).toBe(true);
    expect(readFileSync(join(sb.home, 'run', 'daemon.pid'), 'utf8').trim()).toBe(String(old));
    expect((await sb.run(['daemon', 'status'])).code).toBe(3);

    const list = JSON.parse(await ok(sb, ['messages', 'list', 'q', '--json'])) as { id: string; data: string }[];
    expect(list).toMatchObject([{ id, data: 'before the crash' }]);
    const pid = sb.daemonPid()!;
    expect(pid).not.toBe(old);
    expect(await statusPid(sb)).toBe(pid);
    expect(statSync(sb.socket).mode & 0o777).toBe(0o600);
    await ok(sb, ['publish', 'q', '--data', 'after the crash']);
    expect(daemonProcesses(sb.home)).toEqual([pid]);
  });

  it('takes over a start lock left by a starter that died, or one that is old', async () => {
    const lock = join(sb.home, 'run', 'start.lock');
    mkdirSync(join(sb.home, 'run'), { recursive: true });
    // A pid that surely is not running: a child that has exited.
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(lock, `${dead}\n`);
    await ok(sb, ['queue', 'create', 'a']);
    expect(existsSync(lock)).toBe(false);
    await ok(sb, ['daemon', 'stop']);

    // Held by a live process (this one), but a minute old: its starter is long gone.
    writeFileSync(lock, `${process.pid}\n`);
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(lock, minuteAgo, minuteAgo);
    await ok(sb, ['queue', 'create', 'b']);
    expect(JSON.parse(await ok(sb, ['queue', 'list', '--json']))).toMatchObject([{ name: 'a' }, { name: 'b' }]);
  });

  it('stops, restarts with a new pid, reports status, and shows its log', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const first = sb.daemonPid()!;
    const restarted = JSON.parse(await ok(sb, ['daemon', 'restart', '--json'])) as { pid: number };
    expect(restarted.pid).not.toBe(first);
    expect(isRunning(first)).toBe(false);
    expect(await statusPid(sb)).toBe(restarted.pid);
    const human = await ok(sb, ['daemon', 'status']);
    expect(human).toMatch(/status:\s+running/);
    expect(human).toContain(`pid:      ${restarted.pid}`);

    const logs = await ok(sb, ['daemon', 'logs']);
    expect(logs).toContain(`daemon started pid=${restarted.pid}`);
    expect(logs).toContain('daemon stopping');

    const stop = JSON.parse(await ok(sb, ['daemon', 'stop', '--json'])) as { stopped: boolean; pid: number };
    expect(stop).toEqual({ stopped: true, pid: restarted.pid });
    expect(isRunning(restarted.pid)).toBe(false);
    const status = await sb.run(['daemon', 'status', '--json']);
    expect(status.code).toBe(3);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false });
    // Stopping a stopped daemon is fine.
    expect((await sb.run(['daemon', 'stop'])).code).toBe(0);
    // Restart of a stopped daemon starts one.
    const again = JSON.parse(await ok(sb, ['daemon', 'restart', '--json'])) as { pid: number };
    expect(isRunning(again.pid)).toBe(true);
    expect(JSON.parse(await ok(sb, ['queue', 'list', '--json']))).toMatchObject([{ name: 'q' }]);
  });

  it.runIf(process.platform === 'linux')("runs with glibc's trim threshold fixed unless the user set it, and the commands it runs inherit only the user's", async () => {
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const commandEnv = async (file: string) => {
      const path = join(sb.dir, file);
      await ok(sb, ['listener', 'add', '--queue', 'q', '--name', file, '--shell', '--exec', `env > ${path}.tmp && mv ${path}.tmp ${path}`]);
      await ok(sb, ['publish', 'q', '--data', '"x"']);
      return (await waitFor(() => (existsSync(path) ? readFileSync(path, 'utf8') : undefined), 30_000, `${file} written by the command`)).split('\n');
    };
    await ok(sb, ['queue', 'create', 'q']);
    expect(environ(sb.daemonPid()!)).toContain('MALLOC_TRIM_THRESHOLD_=131072');
    const ours = await commandEnv('env-default');
    expect(ours.some((l) => l.startsWith('MALLOC_TRIM_THRESHOLD_=') || l.startsWith('DISCUE_MALLOC'))).toBe(false);
    await ok(sb, ['listener', 'remove', 'env-default']);

    // The user's own value is the daemon's, and its commands'.
    expect((await sb.run(['daemon', 'restart'], { env: { MALLOC_TRIM_THRESHOLD_: '65536' } })).code).toBe(0);
    expect(environ(sb.daemonPid()!)).toContain('MALLOC_TRIM_THRESHOLD_=65536');
    expect(await commandEnv('env-user')).toContain('MALLOC_TRIM_THRESHOLD_=65536');
  });

  it('`daemon stop` returns once the daemon exited even if its parent never reaps it (no init in a container)', async () => {
    // The daemon's parent becomes `sleep`, which never waits for children: the
    // stopped daemon stays a zombie, as under a container without --init.
    const parent = spawn('/bin/sh', ['-c', `"${process.execPath}" "${BIN}" daemon start --foreground 2>/dev/null & exec sleep 600`], {
      env: sb.env,
      stdio: 'ignore',
    });
    try {
      await waitFor(() => existsSync(sb.socket) && sb.daemonPid() !== undefined, 20_000, 'the daemon');
      const pid = sb.daemonPid()!;
      await ok(sb, ['queue', 'create', 'q']);
      const stop = await sb.run(['daemon', 'stop'], { timeoutMs: 60_000 });
      expect(stop.code, stop.stderr).toBe(0);
      expect(stop.stdout).toContain(`daemon stopped (pid ${pid})`);
      expect(isRunning(pid)).toBe(false);
      expect((await sb.run(['daemon', 'status'])).code).toBe(3);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('follows its log with `daemon logs -f` until interrupted (exit 130)', async () => {
    await ok(sb, ['daemon', 'start']);
    const follower = sb.spawn(['daemon', 'logs', '-f']);
    const done = collect(follower, { timeoutMs: 60_000 });
    let out = '';
    follower.stdout!.on('data', (d: Buffer | string) => (out += String(d)));
    await waitFor(() => out.includes('daemon started'), 20_000, 'the start line');
    // Something the daemon logs later: a client sending garbage.
    const raw = await RawClient.connect(sb.socket);
    raw.socket.write('garbage\n');
    await raw.waitClosed();
    await waitFor(() => out.includes('malformed frame'), 20_000, 'the new log line');
    follower.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(130);
  });

  it('answers a client of another protocol version with PROTOCOL_MISMATCH and says what to do', async () => {
    await ok(sb, ['daemon', 'start']);
    const pid = sb.daemonPid();
    const raw = await RawClient.connect(sb.socket);
    raw.send({ id: 1, type: 'hello', params: { protocol: 999, version: 'x' } });
    const reply = (await raw.frame(1)) as { ok: boolean; error: { code: string; message: string } };
    expect(reply.ok).toBe(false);
    expect(reply.error.code).toBe('PROTOCOL_MISMATCH');
    expect(reply.error.message).toContain('discue daemon restart');
    await raw.waitClosed();
    expect(await statusPid(sb)).toBe(pid);
  });

  it('falls back to a socket in tmp when DISCUE_HOME is too deep for a socket path', async () => {
    const deep = join(sb.dir, 'd'.repeat(60), 'e'.repeat(60));
    const env = { DISCUE_HOME: deep };
    await ok(sb, ['queue', 'create', 'q'], undefined);
    expect((await sb.run(['queue', 'create', 'deep'], { env })).code).toBe(0);
    const status = JSON.parse((await sb.run(['daemon', 'status', '--json'], { env })).stdout) as { socket: string; home: string };
    expect(status.home).toBe(deep);
    expect(Buffer.byteLength(status.socket)).toBeLessThanOrEqual(100);
    expect(statSync(status.socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(status.socket, '..')).mode & 0o777).toBe(0o700);
    const queues = JSON.parse((await sb.run(['queue', 'list', '--json'], { env })).stdout) as { name: string }[];
    expect(queues.map((q) => q.name)).toEqual(['deep']);
    // The two homes are two brokers.
    expect(JSON.parse(await ok(sb, ['queue', 'list', '--json']))).toMatchObject([{ name: 'q' }]);
    expect((await sb.run(['daemon', 'stop'], { env })).code).toBe(0);
    expect(existsSync(status.socket)).toBe(false);
  });
});
