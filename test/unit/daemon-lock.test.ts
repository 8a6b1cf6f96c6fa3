import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { acquireHomeLock, breakStale } from '../../src/daemon/lock.js';
import { tmpDir } from '../helpers/tmp.js';

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('the daemon home lock', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = tmpDir('discue-lock-');
    path = join(dir, 'daemon.lock');
  });

  it('is held once: a second taker gets ALREADY_RUNNING naming the holder, until it is released', async () => {
    const release = await acquireHomeLock(path);
    expect(Number.parseInt(readFileSync(path, 'utf8'), 10)).toBe(process.pid);
    await expect(acquireHomeLock(path)).rejects.toMatchObject({ code: 'ALREADY_RUNNING', message: expect.stringContaining(`pid ${process.pid}`) });
    await release();
    expect(existsSync(path)).toBe(false);
    const again = await acquireHomeLock(path);
    await again();
  });

  it('breaks a lock whose holder is dead', async () => {
    writeFileSync(path, `${deadPid()}\n\n`);
    const release = await acquireHomeLock(path);
    expect(Number.parseInt(readFileSync(path, 'utf8'), 10)).toBe(process.pid);
    await release();
  });

  it.runIf(existsSync('/proc/self/stat'))('breaks a lock whose pid now belongs to another process (start time differs)', async () => {
    writeFileSync(path, `${process.pid}\n1\n`);
    const release = await acquireHomeLock(path);
    expect(readFileSync(path, 'utf8')).not.toBe(`${process.pid}\n1\n`);
    await release();
  });

  it('breaks an empty lock once it is old (its writer died before writing)', async () => {
    writeFileSync(path, '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const release = await acquireHomeLock(path);
    expect(Number.parseInt(readFileSync(path, 'utf8'), 10)).toBe(process.pid);
    await release();
  });

  it('of ten takers racing over one stale lock, exactly one gets it (50 rounds)', async () => {
    // The race is in the instants between reading, breaking and taking: one round rarely hits it.
    const dead = deadPid();
    for (let round = 0; round < 50; round++) {
      writeFileSync(path, `${dead}\n\n`);
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => acquireHomeLock(path)));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won, `round ${round}`).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'ALREADY_RUNNING' });
      await (won[0] as PromiseFulfilledResult<() => Promise<void>>).value();
      expect(existsSync(path)).toBe(false);
    }
  });

  it('a starter late to break a stale lock leaves the live lock another starter took meanwhile', async () => {
    const stale = `${deadPid()}\n\n`;
    writeFileSync(path, stale);
    const release = await acquireHomeLock(path);
    const live = readFileSync(path, 'utf8');
    // What a second starter that read the stale lock before the first broke it does next.
    await breakStale(path, stale);
    expect(readFileSync(path, 'utf8')).toBe(live);
    await expect(acquireHomeLock(path)).rejects.toMatchObject({ code: 'ALREADY_RUNNING' });
    await release();
  });

  it('release leaves a lock that is no longer its own', async () => {
    const release = await acquireHomeLock(path);
    writeFileSync(path, `${process.pid}\nsomeone else\n`);
    await release();
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\nsomeone else\n`);
  });
});
