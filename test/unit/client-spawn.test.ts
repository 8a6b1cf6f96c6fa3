import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { daemonEnv, ensureHome, isAlive } from '../../src/client/spawn.js';
import { DiscueError } from '../../src/protocol/errors.js';
import { resolvePaths } from '../../src/protocol/paths.js';
import { waitFor } from '../helpers/sandbox.js';
import { tmpDir } from '../helpers/tmp.js';

describe('ensureHome', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('discue-home-');
  });

  it('creates the home and its run directory (0700)', async () => {
    const paths = resolvePaths({ home: join(dir, 'a', 'b') });
    await ensureHome(paths);
    expect(statSync(paths.runDir).mode & 0o777).toBe(0o700);
    expect(statSync(paths.home).isDirectory()).toBe(true);
  });

  it('reports a home under a file as HOME_NOT_WRITABLE, naming it', async () => {
    writeFileSync(join(dir, 'file'), '');
    const home = join(dir, 'file', 'home');
    const err = await ensureHome(resolvePaths({ home })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscueError);
    expect((err as DiscueError).code).toBe('HOME_NOT_WRITABLE');
    expect((err as DiscueError).message).toContain(home);
  });

  it('creates the directory of a socket outside the home, and reports one that cannot be', async () => {
    const socket = join(dir, 'sockets', 'deep', 'd.sock');
    await ensureHome(resolvePaths({ home: join(dir, 'h'), socket }));
    expect(existsSync(join(dir, 'sockets', 'deep'))).toBe(true);

    writeFileSync(join(dir, 'file'), '');
    const bad = join(dir, 'file', 'd.sock');
    const err = await ensureHome(resolvePaths({ home: join(dir, 'h'), socket: bad })).catch((e: unknown) => e);
    expect((err as DiscueError).code).toBe('DAEMON_UNREACHABLE');
    expect((err as DiscueError).message).toContain(bad);
  });
});

describe('isAlive', () => {
  it('is true for a running process and false once it exited', async () => {
    expect(isAlive(process.pid)).toBe(true);
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    await waitFor(() => child.pid !== undefined, 5_000, 'the child');
    expect(isAlive(child.pid!)).toBe(true);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(isAlive(child.pid!)).toBe(false);
  });

  it('is false for a zombie whose parent never reaps it', async () => {
    // `sh` starts a short-lived child, then becomes `sleep`, which never waits
    // for it. The child lives a second, so `sh` has become `sleep` (and cannot
    // reap it) by the time it exits.
    const parent = spawn('/bin/sh', ['-c', 'sleep 1 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      let out = '';
      parent.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const pid = await waitFor(() => Number.parseInt(out, 10), 5_000, 'the child pid');
      const state = () => {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      };
      expect(isAlive(pid)).toBe(true);
      await waitFor(() => state() === 'Z', 20_000, 'the child to become a zombie');
      // kill(pid, 0) still succeeds on a zombie; isAlive must not be fooled.
      expect(() => process.kill(pid, 0)).not.toThrow();
      expect(isAlive(pid)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});

describe('daemonEnv', () => {
  it("fixes glibc's trim threshold, marked as discue's, unless the user set it either way", () => {
    expect(daemonEnv({ PATH: '/bin' })).toEqual({ PATH: '/bin', MALLOC_TRIM_THRESHOLD_: '131072', DISCUE_MALLOC_DEFAULTED: '1' });
    expect(daemonEnv({ MALLOC_TRIM_THRESHOLD_: '0' })).toEqual({ MALLOC_TRIM_THRESHOLD_: '0' });
    expect(daemonEnv({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=65536' })).toEqual({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=65536' });
    // Another tunable leaves the threshold to us.
    expect(daemonEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).toMatchObject({ MALLOC_TRIM_THRESHOLD_: '131072' });
  });
});
