/**
 * When the daemon cannot be reached or spoken to: bad socket paths, sockets
 * that belong to some other program, a DISCUE_HOME that cannot be written.
 * Each gets exit 3 (or 1 for the home) with a stable code, and no daemon is
 * left running for the home.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { daemonProcesses, expectError, expectJsonError, ok } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

/** A Unix socket server in this process that answers the way `behave` says. */
async function foreignServer(path: string, behave: (socket: Socket) => void): Promise<Server> {
  const server = createServer(behave);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return server;
}

describe('unreachable and foreign sockets, unwritable homes', () => {
  const sb = useSandbox();
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.close();
      server.unref();
    }
  });

  it('reports a socket path in a directory that cannot exist with exit 3', async () => {
    const file = join(sb.dir, 'file');
    writeFileSync(file, 'not a directory');
    const socket = join(file, 'x.sock');

    const flag = await sb.run(['--socket', socket, 'queue', 'list']);
    expectError(flag, 3, 'DAEMON_UNREACHABLE');
    expect(flag.stderr).toContain(socket);
    expectJsonError(await sb.run(['queue', 'list', '--json'], { env: { DISCUE_SOCKET: socket } }), 3, 'DAEMON_UNREACHABLE');
    expectError(await sb.run(['publish', 'q', '--data', 'x'], { env: { DISCUE_SOCKET: socket } }), 3, 'DAEMON_UNREACHABLE');
    // status and stop do not start anything: "not running" is status 3, stop 0.
    expect((await sb.run(['--socket', socket, 'daemon', 'status'])).code).toBe(3);
    expect((await sb.run(['--socket', socket, 'daemon', 'stop'])).code).toBe(0);
    expect(daemonProcesses(sb.home)).toEqual([]);
  });

  it('starts the daemon on a --socket path in a fresh directory and keeps using it', async () => {
    const socket = join(sb.dir, 'elsewhere', 'deeper', 'd.sock');
    await ok(sb, ['--socket', socket, 'queue', 'create', 'q']);
    await ok(sb, ['--socket', socket, 'publish', 'q', '--data', 'via custom socket']);
    const same = JSON.parse(await ok(sb, ['--socket', socket, 'messages', 'list', 'q', '--json'])) as { data: string }[];
    expect(same.map((m) => m.data)).toEqual(['via custom socket']);
    expect(daemonProcesses(sb.home)).toHaveLength(1);
  });

  it('refuses a socket that answers garbage: NOT_A_DISCUE_SOCKET, exit 3', async () => {
    const path = join(sb.dir, 'garbage.sock');
    servers.push(await foreignServer(path, (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const result = await sb.run(['--socket', path, 'queue', 'list']);
    expectError(result, 3, 'NOT_A_DISCUE_SOCKET');
    expect(result.stderr).toContain(path);
    expectJsonError(await sb.run(['--socket', path, 'publish', 'q', '--data', 'x', '--json']), 3, 'NOT_A_DISCUE_SOCKET');
    expect(daemonProcesses(sb.home)).toEqual([]);
  });

  it('refuses a socket that echoes what it gets (no crash): NOT_A_DISCUE_SOCKET, exit 3', async () => {
    const path = join(sb.dir, 'echo.sock');
    servers.push(await foreignServer(path, (s) => s.pipe(s)));
    const result = await sb.run(['--socket', path, 'queue', 'list']);
    expectError(result, 3, 'NOT_A_DISCUE_SOCKET');
    expect(result.stderr).not.toContain('TypeError');
  });

  it('refuses a socket that answers the handshake with the wrong shape instead of hanging', async () => {
    const path = join(sb.dir, 'fake.sock');
    servers.push(await foreignServer(path, (s) => s.write('{"id":1,"ok":true,"result":{}}\n')));
    expectError(await sb.run(['--socket', path, 'queue', 'list'], { timeoutMs: 20_000 }), 3, 'NOT_A_DISCUE_SOCKET');
  });

  it('reports a socket that accepts and closes at once as exit 3, with the tail of the daemon log', async () => {
    const path = join(sb.dir, 'closer.sock');
    servers.push(await foreignServer(path, (s) => s.destroy()));
    mkdirSync(sb.home, { recursive: true });
    writeFileSync(sb.logFile, 'earlier line\nlast words of the daemon\n');
    const result = await sb.run(['--socket', path, 'queue', 'list']);
    expectError(result, 3, 'DAEMON_DIED');
    expect(result.stderr).toContain('last words of the daemon');
    expect(daemonProcesses(sb.home)).toEqual([]);
  });

  it('gives up on a socket that accepts and never answers: NOT_A_DISCUE_SOCKET, exit 3', async () => {
    const path = join(sb.dir, 'silent.sock');
    servers.push(await foreignServer(path, () => undefined));
    const result = await sb.run(['--socket', path, 'queue', 'list'], { timeoutMs: 40_000 });
    expectError(result, 3, 'NOT_A_DISCUE_SOCKET');
    expect(result.stderr).toContain('handshake');
  });

  it('reports a DISCUE_HOME that cannot be created as HOME_NOT_WRITABLE (exit 1)', async () => {
    const file = join(sb.dir, 'file');
    writeFileSync(file, 'not a directory');
    const home = join(file, 'home');
    const env = { DISCUE_HOME: home };

    const list = await sb.run(['queue', 'list'], { env });
    expectError(list, 1, 'HOME_NOT_WRITABLE');
    expect(list.stderr).toContain(home);
    expectJsonError(await sb.run(['publish', 'q', '--data', 'x', '--json'], { env }), 1, 'HOME_NOT_WRITABLE');
    expectError(await sb.run(['daemon', 'start'], { env }), 1, 'HOME_NOT_WRITABLE');
    expect((await sb.run(['daemon', 'status'], { env })).code).toBe(3);
    expect(daemonProcesses(home)).toEqual([]);
  });

  it('never deletes a regular file given as the socket path (exit 3, file intact)', async () => {
    const notes = join(sb.dir, 'notes.txt');
    writeFileSync(notes, 'precious');
    expectError(await sb.run(['--socket', notes, 'queue', 'list']), 3, 'NOT_A_DISCUE_SOCKET');
    expectError(await sb.run(['--socket', notes, 'daemon', 'start']), 3, 'NOT_A_DISCUE_SOCKET');
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env: { DISCUE_SOCKET: notes } }), 3, 'NOT_A_DISCUE_SOCKET');
    expect(readFileSync(notes, 'utf8')).toBe('precious');
    expect(daemonProcesses(sb.home)).toEqual([]);
  });

  it('refuses a socket path too long for the kernel instead of truncating it (exit 3)', async () => {
    const socket = join(sb.dir, 'd'.repeat(120) + '.sock');
    const result = await sb.run(['--socket', socket, 'queue', 'list']);
    expectError(result, 3, 'SOCKET_PATH_TOO_LONG');
    expect(result.stderr).toContain(socket);
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env: { DISCUE_SOCKET: socket } }), 3, 'SOCKET_PATH_TOO_LONG');
    expect(daemonProcesses(sb.home)).toEqual([]);
  });

  it('never leaves a half-started daemon serving: a start that fails after binding is a start failure', async () => {
    // Something the daemon needs after it opened its socket is unusable: the pid file path is a directory.
    mkdirSync(join(sb.home, 'run', 'daemon.pid'), { recursive: true });
    const result = await sb.run(['queue', 'list']);
    expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(3);
    expect(result.stderr).toMatch(/\[DAEMON_START_FAILED\]|\[DAEMON_DIED\]/);
    expect(result.stderr).toContain('EISDIR');
    await waitFor(() => daemonProcesses(sb.home).length === 0, 20_000, 'the failed daemon to exit');
  });

  it('reports a daemon that cannot start (unusable --data-dir) with exit 3 and the cause from its log', async () => {
    const file = join(sb.dir, 'file');
    writeFileSync(file, 'not a directory');
    const result = await sb.run(['daemon', 'start', '--data-dir', join(file, 'data')]);
    expectError(result, 3, 'DAEMON_START_FAILED');
    // The log tail shown names the cause, not just stack frames.
    expect(result.stderr).toContain('ENOTDIR');
    expect(daemonProcesses(sb.home)).toEqual([]);
    // The home itself is fine: the next command starts a daemon normally.
    await ok(sb, ['queue', 'create', 'q']);
    expect(daemonProcesses(sb.home)).toHaveLength(1);
  });
});
