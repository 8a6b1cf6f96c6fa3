/**
 * Descriptors nobody meant to hand on (src/protocol/fds.ts): the daemon a
 * script's `discue` starts must not keep that script's pipes open, and the
 * commands of a listener must not get the daemon's database files.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BIN, useSandbox, waitFor } from '../helpers/sandbox.js';
import { addListener, mustRun, publishData, writeScript } from '../helpers/delivery.js';

const sb = useSandbox('dq-fds-');

describe('inherited descriptors', () => {
  it('a daemon started by a command keeps none of its caller descriptors: a pipe the caller reads ends when discue exits', async () => {
    // fd 40: what a CI runner or a jobserver hands down without close-on-exec.
    const fd = 40;
    const child = spawn(process.execPath, [BIN, 'queue', 'create', 'orders'], {
      cwd: sb.dir,
      env: sb.env,
      stdio: ['ignore', 'pipe', 'pipe', ...Array<'ignore'>(fd - 3).fill('ignore'), 'pipe'],
    });
    let ended = false;
    const extra = (child.stdio as unknown as Readable[])[fd]!;
    extra.on('end', () => (ended = true)).resume();
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    const daemon = sb.daemonPid();
    expect(daemon).toBeGreaterThan(0);
    // Before: the daemon held the pipe's write end until it stopped, so this waited for ever.
    await waitFor(() => ended, 20_000, 'end-of-file on the pipe the started daemon inherited');
    expect(sb.daemonPid()).toBe(daemon);
  });

  it("a listener's command holds none of the daemon's files open", async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    // Each descriptor of the command's shell and where it points, written by the shell itself.
    writeScript(sb, 'fds.sh', 'for f in /proc/$$/fd/*; do echo "${f##*/} $(readlink "$f")"; done > fds.out.tmp; mv fds.out.tmp fds.out');
    await addListener(sb, ['--queue', 'orders', '--exec', './fds.sh']);
    await publishData(sb, 'orders', ['x']);
    const out = join(sb.dir, 'fds.out');
    const fds = await waitFor(() => {
      try {
        return readFileSync(out, 'utf8').trim().split('\n');
      } catch {
        return undefined;
      }
    }, 20_000, 'the command to list its descriptors');
    expect(fds.some((line) => line.startsWith('0 '))).toBe(true);
    // Before: LOCK, LOG, MANIFEST and the write-ahead log of $DISCUE_HOME/data were all here.
    expect(fds.filter((line) => line.includes(sb.home))).toEqual([]);
  });
});
