/**
 * No request waits forever. A daemon stopped with SIGSTOP still accepts
 * connections (the kernel queues them) but answers nothing: a command already
 * connected, a new command, a `listen` stream, a `publish --wait` and a
 * library client each end with DAEMON_TIMEOUT (exit 124), naming the pid.
 * Every test continues the daemon in a `finally`, so the sandbox can clean up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, isDiscueError } from '../../src/index.js';
import { expectError, expectJsonError, ok } from '../helpers/discue.js';
import { collect, useSandbox, waitFor } from '../helpers/sandbox.js';

const sb = useSandbox('dq-deadline-');
const stopped = new Set<number>();

afterEach(async () => {
  for (const pid of stopped) cont(pid);
  stopped.clear();
});

/** SIGSTOPs the daemon; afterEach continues it whatever happens. */
function stop(pid: number): void {
  stopped.add(pid);
  process.kill(pid, 'SIGSTOP');
}

function cont(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // already gone
  }
  stopped.delete(pid);
}

async function startedDaemon(): Promise<number> {
  await ok(sb, ['queue', 'create', 'q']);
  const pid = sb.daemonPid();
  expect(pid).toBeGreaterThan(0);
  return pid!;
}

describe('deadlines: a stopped daemon never hangs a client', () => {
  it('a command already connected exits 124, naming the daemon and its pid', async () => {
    const pid = await startedDaemon();
    // An NDJSON publish: the first batch (1000 lines) goes through while the
    // daemon runs; the rest is sent only after it was stopped.
    const child = sb.spawn(['publish', 'q'], { env: { DISCUE_REQUEST_TIMEOUT: '3s' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // Not collect(): that ends stdin, and this stdin stays open until the daemon is stopped.
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    child.stdin!.write(Array.from({ length: 1000 }, (_, i) => JSON.stringify({ data: `m${i}` }) + '\n').join(''));
    await waitFor(() => stdout.trim().split('\n').length >= 1000, 30_000, 'the first batch stored');
    stop(pid);
    child.stdin!.end(JSON.stringify({ data: 'while stopped' }) + '\n');
    expect(await exited, stderr).toBe(124);
    expect(stderr).toContain(`the daemon (pid ${pid}) did not answer within 3s`);
    expect(stderr).toContain('[DAEMON_TIMEOUT]');
    expect(stderr).toContain('the 1000 messages before it were stored');

    cont(pid);
    expect(JSON.parse(await ok(sb, ['queue', 'show', 'q', '--json'])).messages).toBeGreaterThanOrEqual(1000);
  });

  it('a new command says the daemon is not answering, with its pid; once continued it works again', async () => {
    const pid = await startedDaemon();
    stop(pid);
    const env = { DISCUE_REQUEST_TIMEOUT: '2s' };
    const human = await sb.run(['publish', 'q', '--data', 'x'], { env });
    expectError(human, 124, 'DAEMON_TIMEOUT');
    expect(human.stderr).toContain(`the daemon (pid ${pid}) is not answering`);
    expect(human.stderr).toContain(`kill -CONT ${pid}`);
    expect(human.stderr).not.toContain('NOT_A_DISCUE_SOCKET');
    const json = expectJsonError(await sb.run(['daemon', 'status', '--json'], { env }), 124, 'DAEMON_TIMEOUT');
    expect(json.message).toContain(`(pid ${pid}) is not answering`);
    expect(json.details).toEqual({ pid });

    cont(pid);
    await ok(sb, ['publish', 'q', '--data', 'after']);
    expect(JSON.parse(await ok(sb, ['messages', 'list', 'q', '--json'])).map((m: { data: string }) => m.data)).toEqual(['after']);
  });

  it('a listen stream pings a silent daemon and ends with 124 when it stops answering', async () => {
    const pid = await startedDaemon();
    const child = sb.spawn(['listen', 'q'], { env: { DISCUE_REQUEST_TIMEOUT: '3s' } });
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const done = collect(child, { timeoutMs: 60_000 });
    // Published until one arrives: the listen may not be subscribed yet for the first.
    await waitFor(
      async () => {
        await ok(sb, ['publish', 'q', '--data', 'hello']);
        return stdout.includes('hello');
      },
      30_000,
      'the listen to print a message',
    );
    stop(pid);
    const result = await done;
    expect(result.code, result.stderr).toBe(124);
    expect(result.stderr).toContain(`the daemon (pid ${pid}) did not answer within 3s`);
    expect(result.stderr).toContain('[DAEMON_TIMEOUT]');
  });

  it('publish --wait gives up on a stopped daemon at its ping deadline, not its wait timeout', async () => {
    const pid = await startedDaemon();
    // A listener that keeps the wait open: the publish waits for it.
    await ok(sb, ['listener', 'add', '--queue', 'q', '--exec', 'sleep 30', '--name', 'slow']);
    const child = sb.spawn(['publish', 'q', '--data', 'x', '--wait', '--wait-timeout', '10m'], {
      env: { DISCUE_REQUEST_TIMEOUT: '3s' },
    });
    const done = collect(child, { timeoutMs: 60_000 });
    await waitFor(async () => JSON.parse(await ok(sb, ['queue', 'show', 'q', '--json'])).messages === 1, 30_000, 'the message stored');
    stop(pid);
    const result = await done;
    expectError(result, 124, 'DAEMON_TIMEOUT');
    expect(result.stderr).toContain(`the daemon (pid ${pid}) did not answer within 3s`);
  });

  it('a library client whose daemon stops rejects with DAEMON_TIMEOUT, then recovers by itself', async () => {
    const pid = await startedDaemon();
    const client = await connect({ home: sb.home, requestTimeoutMs: 2500 });
    sb.onDispose(() => client.close());
    expect((await client.publish('q', { data: 'before' })).ids).toHaveLength(1);
    stop(pid);

    const inFlight = await client.publish('q', { data: 'while stopped' }).catch((err: unknown) => err);
    expect(isDiscueError(inFlight) && inFlight.code, String(inFlight)).toBe('DAEMON_TIMEOUT');
    expect((inFlight as Error).message).toContain(`the daemon (pid ${pid}) did not answer within 2s500ms`);
    // The connection was given up; a new one meets the same silence.
    const next = await client.request('queue.list', {}).catch((err: unknown) => err);
    expect(isDiscueError(next) && next.code, String(next)).toBe('DAEMON_TIMEOUT');
    expect((next as Error).message).toContain(`the daemon (pid ${pid}) is not answering`);

    cont(pid);
    expect((await client.publish('q', { data: 'after' })).ids).toHaveLength(1);
    expect(client.daemon.pid).toBe(pid);
  });

  it('refuses a DISCUE_REQUEST_TIMEOUT that is not a duration (exit 2)', async () => {
    const result = await sb.run(['queue', 'list'], { env: { DISCUE_REQUEST_TIMEOUT: 'soon' } });
    expectError(result, 2, 'INVALID_DURATION');
    expect(result.stderr).toContain('DISCUE_REQUEST_TIMEOUT');
  });
});
