/**
 * runCommand, the one way a delivery runs a command (in the spawner, and in
 * `listen --exec`): the command's own exit decides and ends the attempt,
 * whatever holds its pipes; the deadline holds even for a child that left
 * the process group; stdin that is never read is not an error; only a
 * bounded tail of output is kept.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OUTPUT_TAIL_BYTES, runCommand } from '../../src/delivery/run-command.js';
import type { CommandSpec } from '../../src/delivery/run-command.js';
import { isRunning } from '../helpers/discue.js';
import { killLeftovers } from '../helpers/delivery.js';
import { waitFor } from '../helpers/sandbox.js';
import { tmpDir } from '../helpers/tmp.js';

const spec = (over: Partial<CommandSpec>): CommandSpec => ({ file: 'true', args: [], shell: false, env: {}, input: '', timeoutMs: 30_000, ...over });
const strays: number[] = [];
afterEach(() => {
  killLeftovers(strays);
});
const scratch = () => tmpDir('dq-run-');
function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
describe('runCommand', () => {
  it('exit 0 with a background child still holding stdout: ok, with the output so far, while the child runs on', async () => {
    const dir = scratch();
    const run = runCommand(spec({ file: `sleep 300 & echo $! > ${dir}/bg; echo ok`, shell: true }));
    const outcome = await run.done;
    const bg = Number(readFileSync(join(dir, 'bg'), 'utf8'));
    strays.push(bg);
    expect(outcome).toEqual({ exitCode: 0, output: 'ok\n' });
    expect(isRunning(bg)).toBe(true);
  });

  it('the timeout ends the attempt although a setsid child keeps the pipes open', async () => {
    const dir = scratch();
    const run = runCommand(spec({ file: `setsid sh -c 'echo $$ > ${dir}/esc; exec sleep 300' & echo started; sleep 300`, shell: true, timeoutMs: 300 }));
    const outcome = await run.done;
    strays.push(Number(readFileSync(join(dir, 'esc'), 'utf8')));
    expect(outcome).toMatchObject({ killedBy: 'timed out after 300 ms', signal: 'SIGKILL', output: 'started\n' });
    expect(outcome.exitCode).toBeUndefined();
  });

  it('kill() stops the whole group and says why', async () => {
    const dir = scratch();
    const run = runCommand(spec({ file: `sleep 300 & echo $! > ${dir}/bg; sleep 300`, shell: true }));
    const bg = await waitFor(() => {
      const text = readText(join(dir, 'bg'));
      return text.endsWith('\n') ? Number(text) : undefined;
    }, 10_000, 'the background sleep to start');
    strays.push(bg);
    run.kill('stopped by the daemon');
    expect((await run.done).killedBy).toBe('stopped by the daemon');
    await waitFor(() => !isRunning(bg), 10_000, `the background sleep ${bg} killed with the group`);
  });

  it('a command that never reads 1 MiB of stdin: its exit code, no EPIPE failure', async () => {
    expect(await runCommand(spec({ file: 'sh', args: ['-c', 'exit 3'], input: 'x'.repeat(1 << 20) })).done).toEqual({ exitCode: 3, output: '' });
    expect(await runCommand(spec({ file: 'true', input: 'x'.repeat(1 << 20) })).done).toEqual({ exitCode: 0, output: '' });
  });

  it('stdin arrives verbatim; megabytes of output keep only the tail', async () => {
    const data = 'é$(x)`y`\n'.repeat(30_000);
    const outcome = await runCommand(spec({ file: 'sh', args: ['-c', 'cat; head -c 3000000 /dev/zero | tr "\\0" z; echo end'], input: data })).done;
    expect(outcome.exitCode).toBe(0);
    expect(Buffer.byteLength(outcome.output)).toBeLessThanOrEqual(OUTPUT_TAIL_BYTES);
    expect(outcome.output).toMatch(/^z+end\n$/);
    const echoed = await runCommand(spec({ file: 'cat', input: data.slice(0, 2000) })).done;
    expect(echoed.output).toBe(data.slice(0, 2000));
  });

  it('a program that cannot be started: an error naming it, no exit code', async () => {
    const outcome = await runCommand(spec({ file: '/nonexistent/program' })).done;
    expect(outcome.error).toMatch(/^cannot start \/nonexistent\/program: .*ENOENT/);
    expect(outcome.exitCode).toBeUndefined();
  });
});
