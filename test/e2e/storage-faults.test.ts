/**
 * A full disk, through the real binary and daemon: DISCUE_HOME (data, log,
 * socket) lives on a small tmpfs inside the sandbox, filled with a filler
 * file. Mounting needs root; CI runs as root, elsewhere these are skipped
 * with the reason in their name.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectError, listAll, ok, statusPid } from '../helpers/discue.js';
import { ROOT_USER, fillDisk } from '../helpers/disk.js';
import { useSandbox } from '../helpers/sandbox.js';

const TITLE = ROOT_USER
  ? 'storage faults: disk full'
  : 'storage faults: disk full (SKIPPED: mounting a small tmpfs needs root; CI runs these as root)';

/**
 * tmpfs hands out whole pages: a log whose last page has room takes a few
 * more lines even on a full disk. Padding it to a page boundary makes the
 * daemon's next log line need a page it cannot get.
 */
function padToPage(file: string): void {
  const size = statSync(file).size;
  const pad = 4096 - (size % 4096);
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, '#'.repeat(pad - 1) + '\n');
  } finally {
    closeSync(fd);
  }
}

/** One message of about 100 KB as NDJSON (too large for the argument list, so on stdin). */
function big(tag: string): string {
  return JSON.stringify({ data: tag + '-' + 'x'.repeat(100_000) }) + '\n';
}

describe.skipIf(!ROOT_USER)(TITLE, () => {
  const sb = useSandbox();
  beforeEach(() => {
    mkdirSync(sb.home, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', sb.home]);
  });
  afterEach(async () => {
    // Lazy: the daemon may still hold files there; dispose() kills it next.
    execFileSync('umount', ['-l', sb.home]);
  });

  it('refuses writes with STORAGE_FULL naming the directory, keeps reads and counters right, survives its log, and resumes once space is free', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    for (const n of [1, 2, 3]) await ok(sb, ['publish', 'q', '--data', `before-${n}`]);
    const pid = await statusPid(sb);
    padToPage(sb.logFile);
    const filler = fillDisk(sb.home);

    // Several at once: some may still fit in a page LevelDB already has, the rest must fail cleanly.
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => sb.run(['publish', 'q'], { input: big(`full-${n}`) })));
    const refused = results.filter((r) => r.code !== 0);
    expect(refused.length, results.map((r) => r.stderr).join('\n')).toBeGreaterThan(0);
    for (const result of refused) {
      expectError(result, 1, 'STORAGE_FULL');
      expect(result.stderr).toContain(join(sb.home, 'data'));
    }

    // Reads work, and the counters count exactly what is stored.
    const stored = await listAll(sb, 'q');
    expect(stored.slice(0, 3).map((m) => m.data)).toEqual(['before-1', 'before-2', 'before-3']);
    expect(stored.length).toBe(3 + results.length - refused.length);
    const [info] = JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as { name: string; messages: number }[];
    expect(info!.messages).toBe(stored.length);
    expect(await ok(sb, ['messages', 'get', 'q', stored[0]!.id])).toContain('before-1');
    const status = await sb.run(['daemon', 'status']);
    expect(status.code).toBe(0);
    expect(status.stderr).toMatch(/warning: the disk holding .* is full/);

    // The same daemon took every refusal, its log unwritable, and is still there.
    expect(await statusPid(sb)).toBe(pid);

    rmSync(filler);
    await ok(sb, ['publish', 'q', '--data', 'after']);
    expect(await statusPid(sb)).toBe(pid);
    const after = await listAll(sb, 'q');
    expect(after[after.length - 1]!.data).toBe('after');
    const [infoAfter] = JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as { messages: number }[];
    expect(infoAfter!.messages).toBe(after.length);
    // The lines it could not write are accounted for once writing works again.
    expect(sb.log()).toMatch(/\d+ log line\(s\) were dropped while the log could not be written/);
    expect(sb.log()).toContain('storage writable again');
  });

  it('an auto-start on a full disk leaves no start lock behind: once space is free the next command starts the daemon', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    await ok(sb, ['daemon', 'stop']);
    const filler = fillDisk(sb.home);

    const refused = await sb.run(['queue', 'list']);
    expectError(refused, 1, 'STORAGE_FULL');
    expect(refused.stderr).toContain(join(sb.home, 'run'));
    expect(existsSync(join(sb.home, 'run', 'start.lock'))).toBe(false);

    rmSync(filler);
    // Before: an empty start.lock that blocked every start for 30 s, so this
    // timed out (DAEMON_START_FAILED) after waiting 20 s for it.
    const list = await sb.run(['queue', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((q) => q.name)).toEqual(['q']);
  });
});

describe('storage faults: stale start locks', () => {
  const sb = useSandbox();
  beforeEach(() => {
    mkdirSync(join(sb.home, 'run'), { recursive: true, mode: 0o700 });
  });

  it('a start lock naming a starter that died is taken over at once', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(join(sb.home, 'run', 'start.lock'), `${dead}\n`);
    const list = await sb.run(['queue', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(existsSync(join(sb.home, 'run', 'start.lock'))).toBe(false);
  });

  it('an empty start lock (left by a starter that could not write its pid) does not block starts for 30 s', async () => {
    // What an older discue left on a full disk: the lock created, its pid never written.
    const lock = join(sb.home, 'run', 'start.lock');
    writeFileSync(lock, '');
    // Old enough to be stale as an empty lock, young enough that the 30 s rule alone would not free it in time.
    const fiveSecondsAgo = new Date(Date.now() - 5_000);
    utimesSync(lock, fiveSecondsAgo, fiveSecondsAgo);
    // Before: the starter waited for the lock past its own 20 s deadline (DAEMON_START_FAILED).
    const list = await sb.run(['queue', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.trim()).toBe('[]');
  });
});
