/**
 * Nobody else gets in: a socket (or its directory) that another user could
 * control is refused before anything is sent, a data directory others could
 * read is refused, the daemon's files are private, and passwords in listener
 * URLs are shown only to `listener show --secret`.
 *
 * "Another user" is simulated by chown to uid 65534 (nobody), which only root
 * can do: those tests are skipped with a reason when not run as root.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolvePaths } from '../../src/protocol/paths.js';
import { daemonProcesses, expectError, expectJsonError, ok } from '../helpers/discue.js';
import { addListener, closeAllServers, listDeliveries, showListener, startHookServer } from '../helpers/delivery.js';
import type { ListenerJson } from '../helpers/delivery.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
/** Appended to the names of tests that chown: vitest shows it when they are skipped. */
const ROOT_ONLY = ' (root only: chown to another uid)';

/** A squatter: answers the discue handshake as a daemon would and records every frame it gets. */
interface Squatter {
  server: Server;
  connections: number;
  frames: { type?: string; params?: unknown }[];
}

async function squat(path: string): Promise<Squatter> {
  const squatter: Squatter = { server: createServer(), connections: 0, frames: [] };
  squatter.server.on('connection', (socket) => {
    squatter.connections++;
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const frame = JSON.parse(buffered.slice(0, newline)) as { id: number; type?: string; params?: unknown };
        buffered = buffered.slice(newline + 1);
        squatter.frames.push(frame);
        const result =
          frame.type === 'hello'
            ? { protocol: 1, version: '0.1.0', pid: process.pid }
            : { queue: 'q', ids: ['01M8DK0YMQA304GWEX5PX128G5'], publishedAt: new Date().toISOString() };
        socket.write(JSON.stringify({ id: frame.id, ok: true, result }) + '\n');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    squatter.server.once('error', reject);
    squatter.server.listen(path, () => resolve());
  });
  return squatter;
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

describe('socket ownership', () => {
  const sb = useSandbox('dq-sec-');
  let tmp: string;
  let home: string;
  let socket: string;
  let env: Record<string, string>;
  const servers: Server[] = [];

  beforeEach(() => {
    // A home too deep for a socket path: its socket falls back to $TMPDIR/discue-UID/.
    // TMPDIR points into the sandbox, so no test touches the machine's real /tmp/discue-UID.
    tmp = join(sb.dir, 'tmp');
    mkdirSync(tmp, { mode: 0o1777 });
    chmodSync(tmp, 0o1777);
    home = join(sb.dir, 'h'.repeat(110));
    env = { DISCUE_HOME: home, TMPDIR: tmp };
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      socket = resolvePaths({ home }).socket;
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) server.close();
  });

  it('uses the per-user fallback directory in TMPDIR for a deep home, created 0700', async () => {
    expect(socket.startsWith(join(tmp, `discue-${process.getuid!()}`))).toBe(true);
    const create = await sb.run(['queue', 'create', 'deep'], { env });
    expect(create.code, create.stderr).toBe(0);
    expect(modeOf(join(tmp, `discue-${process.getuid!()}`))).toBe(0o700);
    expect(statSync(socket).isSocket()).toBe(true);
  });

  it.skipIf(!isRoot)('refuses a fallback directory squatted by another user, and sends the squatter nothing' + ROOT_ONLY, async () => {
    const dir = join(tmp, `discue-${process.getuid!()}`);
    mkdirSync(dir, { mode: 0o755 });
    const squatter = await squat(socket);
    servers.push(squatter.server);
    chownSync(dir, NOBODY, NOBODY);

    const publish = await sb.run(['publish', 'q', '--data', 'card number 4242'], { env });
    expectError(publish, 3, 'SOCKET_UNSAFE');
    expect(publish.stderr).toContain(dir);
    expect(publish.stderr).toContain(`uid ${NOBODY}`);
    expect(publish.stderr).toContain('0755');
    const json = expectJsonError(await sb.run(['publish', 'q', '--data', 'card number 4242', '--json'], { env }), 3, 'SOCKET_UNSAFE');
    expect(json.details).toEqual({ path: dir, owner: NOBODY, mode: '0755' });
    // The daemon refuses to bind there as well, and no daemon is left running.
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env }), 3, 'SOCKET_UNSAFE');
    expect(daemonProcesses(home)).toEqual([]);
    expect(squatter.frames).toEqual([]);
    expect(squatter.connections).toBe(0);
  });

  it.skipIf(!isRoot)('refuses a socket owned by another user in our own directory, before sending a byte' + ROOT_ONLY, async () => {
    const dir = join(tmp, `discue-${process.getuid!()}`);
    mkdirSync(dir, { mode: 0o700 });
    const squatter = await squat(socket);
    servers.push(squatter.server);
    chownSync(socket, NOBODY, NOBODY);

    const publish = await sb.run(['publish', 'q', '--data', 'secret'], { env });
    expectError(publish, 3, 'SOCKET_UNSAFE');
    expect(publish.stderr).toContain(socket);
    expect(publish.stderr).toContain(`uid ${NOBODY}`);
    expect(squatter.frames).toEqual([]);
  });

  it('refuses a fallback directory writable by others (chmod 0777), with the chmod fix', async () => {
    const dir = join(tmp, `discue-${process.getuid!()}`);
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const result = await sb.run(['queue', 'list'], { env });
    expectError(result, 3, 'SOCKET_UNSAFE');
    expect(result.stderr).toContain(`chmod 700 ${dir}`);
    expect(result.stderr).toContain('0777');
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env }), 3, 'SOCKET_UNSAFE');
    expect(daemonProcesses(home)).toEqual([]);
    expect(modeOf(dir)).toBe(0o777); // reported, never changed behind the user's back

    // After the fix it works.
    chmodSync(dir, 0o700);
    const fixed = await sb.run(['queue', 'create', 'q'], { env });
    expect(fixed.code, fixed.stderr).toBe(0);
  });

  it('accepts a socket in a sticky world-writable directory like /tmp; there the socket owner decides', async () => {
    const shared = join(sb.dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const path = join(shared, 'mine.sock');
    const create = await sb.run(['--socket', path, 'queue', 'create', 'q']);
    expect(create.code, create.stderr).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await ok(sb, ['--socket', path, 'publish', 'q', '--data', 'via /tmp-like dir']);

    // The same directory without the sticky bit: anyone could replace the socket.
    await ok(sb, ['--socket', path, 'daemon', 'stop']);
    chmodSync(shared, 0o777);
    expectError(await sb.run(['--socket', path, 'queue', 'list']), 3, 'SOCKET_UNSAFE');
  });

  it.skipIf(!isRoot)('refuses another user\'s socket in a sticky world-writable directory' + ROOT_ONLY, async () => {
    const shared = join(sb.dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const path = join(shared, 'theirs.sock');
    const squatter = await squat(path);
    servers.push(squatter.server);
    chownSync(path, NOBODY, NOBODY);
    const result = await sb.run(['--socket', path, 'publish', 'q', '--data', 'secret']);
    expectError(result, 3, 'SOCKET_UNSAFE');
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env: { DISCUE_SOCKET: path } }), 3, 'SOCKET_UNSAFE');
    expect(squatter.frames).toEqual([]);
  });
});

describe('private files', () => {
  const sb = useSandbox('dq-sec-');

  it('creates the data directory 0700 and every file in it and in DISCUE_HOME 0600 (umask 077)', async () => {
    const data = join(sb.dir, 'fresh-data');
    await ok(sb, ['daemon', 'start', '--data-dir', data]);
    await ok(sb, ['queue', 'create', 'q']);
    await ok(sb, ['listener', 'add', '--queue', 'q', '--url', 'http://127.0.0.1:9/hook']);
    await ok(sb, ['publish', 'q', '--data', 'private']);
    expect(modeOf(data)).toBe(0o700);
    const files = readdirSync(data);
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) {
      const path = join(data, file);
      expect({ file, mode: modeOf(path).toString(8) }).toEqual({ file, mode: statSync(path).isDirectory() ? '700' : '600' });
    }
    for (const file of [sb.logFile, join(sb.home, 'run', 'daemon.pid')]) {
      expect({ file, mode: modeOf(file).toString(8) }).toEqual({ file, mode: '600' });
    }
  });

  it('tightens an older daemon log left at 0644', async () => {
    mkdirSync(sb.home, { recursive: true });
    writeFileSync(sb.logFile, 'old line\n', { mode: 0o644 });
    chmodSync(sb.logFile, 0o644);
    await ok(sb, ['daemon', 'start']);
    expect(modeOf(sb.logFile)).toBe(0o600);
  });

  it('refuses an existing data directory other users can read, with the fix in the message', async () => {
    const data = join(sb.dir, 'shared-data');
    mkdirSync(data);
    chmodSync(data, 0o755);
    const foreground = await sb.run(['daemon', 'start', '--foreground', '--data-dir', data]);
    expectError(foreground, 1, 'DATA_DIR_UNSAFE');
    expect(foreground.stderr).toContain(`chmod 700 ${data}`);
    expect(foreground.stderr).toContain('0755');
    // In the background the start fails, and the cause comes from the daemon's log.
    const background = await sb.run(['daemon', 'start', '--data-dir', data]);
    expectError(background, 3, 'DAEMON_START_FAILED');
    expect(background.stderr).toContain(`chmod 700 ${data}`);
    expect(readdirSync(data)).toEqual([]); // nothing was written into it
    expect(daemonProcesses(sb.home)).toEqual([]);

    chmodSync(data, 0o700);
    await ok(sb, ['daemon', 'start', '--data-dir', data]);
    expect(existsSync(join(data, 'CURRENT'))).toBe(true);
  });

  it.skipIf(!isRoot)('refuses a data directory that belongs to another user' + ROOT_ONLY, async () => {
    const data = join(sb.dir, 'their-data');
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, NOBODY, NOBODY);
    const result = await sb.run(['daemon', 'start', '--foreground', '--data-dir', data]);
    expectError(result, 1, 'DATA_DIR_UNSAFE');
    expect(result.stderr).toContain(`uid ${NOBODY}`);
  });
});

describe('credentials in listener URLs and headers', () => {
  const sb = useSandbox('dq-sec-');
  afterEach(async () => {
    await closeAllServers();
  });

  it('are masked everywhere except `listener show --secret`', async () => {
    const PASSWORD = 'hunter2-s3cret';
    const hook = await startHookServer(() => ({ status: 500, body: 'no' }));
    const url = hook.url.replace('http://', `http://alice:${PASSWORD}@`);
    await ok(sb, ['queue', 'create', 'q']);
    type WithUrl = ListenerJson & { url?: string };
    const added: WithUrl = await addListener(sb, ['--queue', 'q', '--url', url, '--name', 'hook', '--max-attempts', '2', '--retry-delay', '10ms']);
    const masked = hook.url.replace('http://', 'http://alice:***@');
    expect(added.url).toBe(masked);
    // A user name alone is masked too: it is often a token.
    const tokenOnly: WithUrl = await addListener(sb, ['--queue', 'q', '--url', hook.url.replace('http://', `http://${PASSWORD}@`), '--name', 'tok', '--max-attempts', '2', '--retry-delay', '10ms']);
    expect(tokenOnly.url).toBe(hook.url.replace('http://', 'http://***@'));

    await ok(sb, ['publish', 'q', '--data', 'x']);
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 2, 20_000, 'both deliveries to die');

    const outputs = [
      await ok(sb, ['listener', 'list']),
      await ok(sb, ['listener', 'list', '--json']),
      await ok(sb, ['listener', 'show', 'hook']),
      await ok(sb, ['listener', 'show', 'hook', '--json']),
      await ok(sb, ['top', '--json']),
      await ok(sb, ['top']),
      await ok(sb, ['deliveries', 'list', '--json']),
      await ok(sb, ['deliveries', 'list']),
      await ok(sb, ['daemon', 'logs', '-n', '1000']),
      sb.log(),
    ];
    for (const output of outputs) expect(output).not.toContain(PASSWORD);
    expect(outputs[0]).toContain('alice:***@');
    expect(outputs[4]).toContain('alice:***@');

    const full: WithUrl = await showListener(sb, 'hook', true);
    expect(full.url).toBe(url);
    expect(await ok(sb, ['listener', 'show', 'hook', '--secret'])).toContain(PASSWORD);
  });

  it('header values are masked like them, are still sent, and --if-missing compares the real ones', async () => {
    const TOKEN = 'Bearer t0k3n-very-secret';
    const hook = await startHookServer();
    await ok(sb, ['queue', 'create', 'q']);
    const PASSWORD = 'pw-in-url-9';
    const url = hook.url.replace('http://', `http://alice:${PASSWORD}@`);
    const flags = ['--queue', 'q', '--url', url, '--name', 'hdr', '--header', `Authorization: ${TOKEN}`, '--header', 'X-Team: shipping'];
    type WithHeaders = ListenerJson & { headers?: Record<string, string>; url?: string };
    const added: WithHeaders = await addListener(sb, flags);
    expect(added.headers).toEqual({ Authorization: '***', 'X-Team': '***' });

    const outputs = [
      await ok(sb, ['listener', 'list', '--json']),
      await ok(sb, ['listener', 'show', 'hdr']),
      await ok(sb, ['listener', 'show', 'hdr', '--json']),
      await ok(sb, ['top', '--json']),
      // The same flags again: kept, exit 0, and printed masked.
      await ok(sb, ['listener', 'add', ...flags, '--if-missing', '--json']),
    ];
    for (const output of outputs) {
      expect(output).not.toContain('t0k3n');
      expect(output).not.toContain(PASSWORD);
    }
    expect(outputs[1]).toContain('Authorization: ***');

    // Another token under the same name is a conflict, named.
    const other = await sb.run(['listener', 'add', ...flags.slice(0, -4), '--header', 'Authorization: Bearer other', '--header', 'X-Team: shipping', '--if-missing']);
    expectError(other, 5, 'LISTENER_EXISTS');
    expect(other.stderr).toContain('header Authorization has another value');
    expect(other.stderr).not.toContain('t0k3n');

    const full: WithHeaders = await showListener(sb, 'hdr', true);
    expect(full.headers).toEqual({ Authorization: TOKEN, 'X-Team': 'shipping' });
    await ok(sb, ['publish', 'q', '--data', 'x']);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'the delivery');
    expect(hook.delivered[0]!.headers.authorization).toBe(TOKEN);
    expect(hook.delivered[0]!.headers['x-team']).toBe('shipping');
  });

  it('are sent as HTTP Basic authentication, and only to the receiver', async () => {
    const hook = await startHookServer();
    await ok(sb, ['queue', 'create', 'q']);
    // Percent-encoded in the URL, as a URL must carry ":" or "@" in a password.
    await addListener(sb, ['--queue', 'q', '--url', hook.url.replace('http://', 'http://alice:p%40ss%3Aword@'), '--name', 'basic']);
    await addListener(sb, ['--queue', 'q', '--url', hook.url, '--name', 'plain']);
    await ok(sb, ['publish', 'q', '--data', 'x']);
    await waitFor(() => hook.delivered.length === 2, 20_000, 'both deliveries');
    const auth = hook.delivered.map((r) => r.headers.authorization).sort();
    expect(auth).toEqual([`Basic ${Buffer.from('alice:p@ss:word').toString('base64')}`, undefined]);
    // The credentials travel in the header, not in the request line.
    for (const r of hook.delivered) expect(r.path).not.toContain('alice');
  });
});
