/**
 * The product under a hostile or unlucky environment, through the real
 * binary and daemon: signals a daemon gets from a closing terminal or an
 * admin, a shell standing in a removed directory, a listener's directory
 * removed later, stdin that never ends a line, an import file that is not
 * what export wrote, an empty HOME, and a library client closed while its
 * daemon is stopped. Each test failed on the code before its fix.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, isDiscueError } from '../../src/index.js';
import { expectError, ok, waitForExit } from '../helpers/discue.js';
import { BIN, collect, useSandbox, waitFor } from '../helpers/sandbox.js';
import type { RunResult } from '../helpers/sandbox.js';

const sb = useSandbox('dq-env-');

/** Runs discue from `dir`, which the shell removes right before the command starts: its cwd is gone. */
function runInRemovedDir(dir: string, args: string[]): Promise<RunResult> {
  mkdirSync(dir, { recursive: true });
  const child = spawn('/bin/sh', ['-c', 'cd "$1" && rmdir "$1" && shift && exec "$@"', 'sh', dir, process.execPath, BIN, ...args], {
    env: sb.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return collect(child);
}

describe('signals to the daemon', () => {
  it('SIGHUP stops it cleanly, says so in its log, leaves no pid file; the next command starts a new one', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    await ok(sb, ['publish', 'q', '--data', 'before']);
    const pid = sb.daemonPid()!;
    process.kill(pid, 'SIGHUP');
    await waitForExit(pid, 'the daemon to stop on SIGHUP');
    // Before the fix: killed by the default action, without a word in the log.
    expect(sb.log()).toContain('daemon stopping reason="signal SIGHUP"');
    expect(sb.log()).toContain('daemon stopped');
    expect(existsSync(join(sb.home, 'run', 'daemon.pid'))).toBe(false);
    const listed = JSON.parse(await ok(sb, ['messages', 'list', 'q', '--json'])) as { data: string }[];
    expect(listed.map((m) => m.data)).toEqual(['before']);
    expect(sb.daemonPid()).not.toBe(pid);
  });
});

describe('working directories that are gone', () => {
  it('listener add --exec and listen --exec from a removed directory: INVALID_ARGUMENT (exit 2), no stack trace', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    for (const args of [
      ['listener', 'add', '--queue', 'q', '--exec', '/bin/true'],
      ['listen', 'q', '--exec', '/bin/true'],
    ]) {
      const result = await runInRemovedDir(join(sb.dir, 'gone'), args);
      expectError(result, 2, 'INVALID_ARGUMENT');
      expect(result.stderr).toContain('the current directory no longer exists');
      expect(result.stderr).not.toContain('uv_cwd');
    }
    const listeners = JSON.parse(await ok(sb, ['listener', 'list', '--json'])) as unknown[];
    expect(listeners).toEqual([]);
  });

  it('a daemon started from a directory removed later still adds listeners without a cwd (library, HTTP API): it runs in its home', async () => {
    const dir = join(sb.dir, 'job');
    mkdirSync(dir);
    await sb.run(['queue', 'create', 'q'], { cwd: dir });
    rmdirSync(dir);
    const client = await connect({ home: sb.home });
    sb.onDispose(() => client.close());
    // Before the fix: INTERNAL "ENOENT: no such file or directory, uv_cwd".
    const added = await client.request('listener.add', { kind: 'exec', queues: ['q'], command: '/bin/cat' });
    expect(added.command).toEqual(['/bin/cat']);
    const relative = await client.request('listener.add', { kind: 'exec', queues: ['q'], command: './hook.sh' }).catch((err: unknown) => err);
    expect(isDiscueError(relative) && relative.code, String(relative)).toBe('COMMAND_NOT_FOUND');
    expect((relative as Error).message).toContain(`relative to ${sb.home}`);
  });

  it("a command listener whose directory was removed: the attempt names the directory, not the program; doctor flags it", async () => {
    const dir = join(sb.dir, 'work');
    mkdirSync(dir);
    await ok(sb, ['queue', 'create', 'q']);
    await sb.run(['listener', 'add', '--queue', 'q', '--exec', '/bin/cat', '--name', 'cat', '--max-attempts', '1'], { cwd: dir });
    rmdirSync(dir);
    await ok(sb, ['publish', 'q', '--data', 'x']);
    type Delivery = { state: string; attempts: { error?: string }[] };
    const [dead] = await waitFor(async () => {
      const list = JSON.parse(await ok(sb, ['deliveries', 'list', '--state', 'dead', '--json'])) as Delivery[];
      return list.length > 0 ? list : undefined;
    }, 30_000, 'the dead delivery');
    // Before the fix: "cannot start /bin/cat: spawn /bin/cat ENOENT", though /bin/cat is there.
    expect(dead!.attempts[0]!.error).toBe(`cannot start /bin/cat: its working directory ${dir} does not exist (removed after the listener was added?)`);

    const doctor = await sb.run(['doctor']);
    expect(doctor.code, doctor.stdout).toBe(1);
    expect(doctor.stdout).toMatch(new RegExp(`fail +listener cat +its working directory ${dir} does not exist`));
  });
});

describe('stdin that is not what it should be', () => {
  it('publish stops at a line over 16 MiB with MESSAGE_TOO_LARGE, without waiting for its end', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const child = sb.spawn(['publish', 'q']);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin!.on('error', () => undefined);
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // 17 MiB and no newline, and stdin stays open: before the fix the CLI
    // buffered on, to gigabytes, and exited only once stdin ended.
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    for (let i = 0; i < 17; i++) child.stdin!.write(chunk);
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 30_000))]);
    child.stdin!.destroy();
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('line 1: over 16777216 bytes');
    expect(stderr).toContain('[MESSAGE_TOO_LARGE]');
    expect(JSON.parse(await ok(sb, ['queue', 'show', 'q', '--json'])).messages).toBe(0);
  });

  it('import refuses lines export never writes with a stable code and the line number, and imports nothing it does not count', async () => {
    const cases: [string, string, string][] = [
      ['{"type":"queue","name":"a"}\nnull\n', 'INVALID_ARGUMENT', 'line 2: not a JSON object'],
      ['{"type":"listener","queues":["a"]}\n', 'INVALID_ARGUMENT', 'line 1: listener kind undefined is not http or exec'],
      ['{"type":"listener","kind":"exec","queues":["a"]}\n', 'INVALID_ARGUMENT', 'line 1: a command listener needs "command"'],
    ];
    for (const [input, code, message] of cases) {
      const result = await sb.run(['import'], { input });
      expectError(result, 2, code);
      expect(result.stderr).toContain(message);
    }
    // Not UTF-8: refused, not stored with U+FFFD in its place.
    const child = sb.spawn(['import']);
    child.stdin!.end(Buffer.concat([Buffer.from('{"type":"queue","name":"b"}\n{"type":"message","queue":"b","id":"01M8R4ZZVP20HFP271489DV8WR","data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('","publishedAt":"2026-12-01T06:34:38.839Z"}\n')]));
    const result = await collect(child);
    expectError(result, 2, 'INVALID_MESSAGE');
    expect(result.stderr).toContain('line 2: not valid UTF-8');
    expect(JSON.parse(await ok(sb, ['queue', 'show', 'b', '--json'])).messages).toBe(0);
    expect(JSON.parse(await ok(sb, ['listener', 'list', '--json']))).toEqual([]);
  });
});

describe('arguments that are not UTF-8', () => {
  it('are refused with INVALID_ARGUMENT (exit 2), not stored with U+FFFD in their place; a real U+FFFD is kept', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    // Only a shell can pass such bytes: Node encodes every argument it spawns as UTF-8.
    for (const args of ['publish q --data "$(printf "caf\\351")"', 'publish q --data x --name "$(printf "n\\377")"', `publish q "$(printf '{"data":"\\351"}')"`]) {
      const child = spawn('/bin/sh', ['-c', `exec "$0" "$1" ${args}`, process.execPath, BIN], { env: sb.env, stdio: ['pipe', 'pipe', 'pipe'] });
      const result = await collect(child);
      expectError(result, 2, 'INVALID_ARGUMENT');
      expect(result.stderr).toContain('is not valid UTF-8');
    }
    await ok(sb, ['publish', 'q', '--data', 'a real \uFFFD stays']);
    const listed = JSON.parse(await ok(sb, ['messages', 'list', 'q', '--json'])) as { data: string }[];
    expect(listed.map((m) => m.data)).toEqual(['a real \uFFFD stays']);
  });
});

describe('a DISCUE_HOME near the path limit', () => {
  it('is refused with HOME_NOT_WRITABLE, naming the limit, not an INTERNAL ENAMETOOLONG', async () => {
    // 4075 bytes: the home itself can be made, the files in it cannot.
    const parts: string[] = [];
    for (let left = 4075 - sb.dir.length; left > 0; left -= 201) parts.push('d'.repeat(Math.min(200, left - 1)));
    const home = join(sb.dir, ...parts);
    expect(Buffer.byteLength(home)).toBeGreaterThan(4060);
    expect(Buffer.byteLength(home)).toBeLessThan(4096);
    const result = await sb.run(['queue', 'create', 'q'], { env: { DISCUE_HOME: home } });
    expectError(result, 1, 'HOME_NOT_WRITABLE');
    expect(result.stderr).toContain("passes the system's path limit of 4095 bytes");
  });
});

describe('a relative TMPDIR', () => {
  it('does not move a deep home\'s socket with the directory a command runs in: two directories, one daemon', async () => {
    const home = join(sb.dir, 'd'.repeat(60), 'e'.repeat(60));
    const env = { DISCUE_HOME: home, TMPDIR: 'tmp-rel' };
    const [a, b] = [join(sb.dir, 'a'), join(sb.dir, 'b')];
    mkdirSync(a);
    mkdirSync(b);
    expect((await sb.run(['queue', 'create', 'q'], { env, cwd: a })).code).toBe(0);
    // Before the fix: a socket under b/tmp-rel, a second daemon refused by the home's lock, DAEMON_START_FAILED after 20 s.
    const listed = await sb.run(['queue', 'list', '--json'], { env, cwd: b });
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((q) => q.name)).toEqual(['q']);
    expect(existsSync(join(a, 'tmp-rel'))).toBe(false);
    expect((await sb.run(['daemon', 'stop'], { env, cwd: b })).code).toBe(0);
  });
});

describe('an empty HOME', () => {
  it('keeps the state in the account home, not in ./.discue of the directory the command runs in', async () => {
    const result = await sb.run(['config', 'list', '--json'], { env: { HOME: '', DISCUE_HOME: undefined } });
    expect(result.code, result.stderr).toBe(0);
    const socket = (JSON.parse(result.stdout) as { key: string; value: string }[]).find((s) => s.key === 'socket')!.value;
    expect(socket).toBe(join(userInfo().homedir, '.discue', 'run', 'discue.sock'));
    expect(existsSync(join(sb.dir, '.discue'))).toBe(false);
  });
});

describe('library: close() and a stopped daemon', () => {
  const stopped = new Set<number>();
  afterEach(() => {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
    stopped.clear();
  });

  it('close() gives up after the request timeout and fails an open stream with DAEMON_TIMEOUT instead of waiting forever', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const idle = await connect({ home: sb.home, requestTimeoutMs: 1500 });
    const streaming = await connect({ home: sb.home, requestTimeoutMs: 1500 });
    const stream = streaming.stream('listen', { queues: ['q'] }, () => undefined).done.catch((err: unknown) => err);
    // The stream is open once the daemon counts both clients' connections.
    await waitFor(async () => JSON.parse(await ok(sb, ['daemon', 'status', '--json'])).connections >= 2, 20_000, 'both clients connected');
    const pid = idle.daemon.pid;
    stopped.add(pid);
    process.kill(pid, 'SIGSTOP');

    const within = (p: Promise<unknown>) => Promise.race([p.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('hung'), 20_000))]);
    // Before the fix: both waited for the stopped daemon to end its side, forever.
    expect(await Promise.all([within(idle.close()), within(streaming.close())])).toEqual(['closed', 'closed']);
    // Ended by close() giving up, or by the stream's own ping if that went out first.
    const err = await stream;
    expect(isDiscueError(err) && err.code, String(err)).toBe('DAEMON_TIMEOUT');
    expect((err as Error).message).toContain(`the daemon (pid ${pid}) did not`);
    await idle.close();

    process.kill(pid, 'SIGCONT');
    stopped.delete(pid);
    // The daemon itself is fine once continued.
    expect(JSON.parse(await ok(sb, ['queue', 'show', 'q', '--json'])).messages).toBe(0);
  });
});
