import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBlock, runnableBlocks } from '../helpers/readme.js';
import { BIN, useSandbox } from '../helpers/sandbox.js';

/** The README's "discue in CI" recipe, run as the shell script a user would write. */
describe('discue in CI (README recipe)', () => {
  const sb = useSandbox();

  function bash(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const file = join(sb.dir, 'ci.sh');
    writeFileSync(file, `set -u\ndiscue() { "${process.execPath}" "${BIN}" "$@"; }\n${script}`);
    return new Promise((resolve) => {
      execFile('bash', [file], { cwd: sb.dir, env: sb.env, timeout: 90_000 }, (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      });
    });
  }

  it('waits for the event the service publishes, then asserts on it', async () => {
    const result = await bash(`
discue daemon start
discue queue create orders
discue listen orders --count 1 --timeout 60s --grep shipped > event.txt &
listener=$!
# the service under test publishes at once (a non-matching event first): no
# sleep needed, listen counts from when it started, not from when it connected
discue publish orders --data 'Order 1001 paid' > /dev/null
discue publish orders --data 'Order 1001 shipped' > /dev/null
wait "$listener"; echo "listen-exit=$?"
grep -q 'Order 1001 shipped' event.txt && echo "asserted"
discue daemon stop
`);
    expect(result.stdout).toContain('listen-exit=0');
    expect(result.stdout).toContain('asserted');
    expect(readFileSync(join(sb.dir, 'event.txt'), 'utf8')).toBe('Order 1001 shipped\n');
    expect(result.code).toBe(0);
  });

  it("the README's recipe, as written, runs twice in the same place: --if-missing set-up, trap clean-up", { timeout: 120_000 }, async () => {
    const recipe = runnableBlocks().find((b) => b.heading === 'discue in CI');
    expect(recipe, 'the README marks its CI recipe runnable').toBeDefined();
    expect(recipe!.script).toContain('trap ');
    const cwd = join(sb.dir, 'job');
    for (const run of [1, 2]) {
      const result = await runBlock(sb, recipe!.script, { cwd });
      expect(result.code, `run ${run}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(0);
      expect(readFileSync(join(cwd, 'event.txt'), 'utf8')).toBe('Order 1001 shipped\n');
      // The trap stopped the daemon it started.
      expect(result.stdout).toContain('daemon stopped');
      if (run === 2) {
        expect(result.stdout).toContain('queue orders already exists');
        expect(result.stdout).toMatch(/listener archive \(l_[^)]+\) already exists/);
      }
    }
    // The recipe's home (under the job's directory): one queue, one listener, both events kept.
    const home = { DISCUE_HOME: join(cwd, 'discue') };
    expect((await sb.run(['daemon', 'status'], { env: home })).code).toBe(3);
    const listeners = JSON.parse((await sb.run(['listener', 'list', '--json'], { env: home })).stdout) as { name: string }[];
    expect(listeners.map((l) => l.name)).toEqual(['archive']);
    const messages = JSON.parse((await sb.run(['messages', 'list', 'orders', '--json'], { env: home })).stdout) as { data: string }[];
    expect(messages.map((m) => m.data)).toEqual(['Order 1001 shipped', 'Order 1001 shipped']);
  });

  it('fails the job with 124 when the event never comes', async () => {
    const result = await bash(`
discue queue create orders
discue listen orders --count 1 --timeout 1s --grep shipped > event.txt
echo "listen-exit=$?"
discue daemon stop
`);
    expect(result.stdout).toContain('listen-exit=124');
    expect(readFileSync(join(sb.dir, 'event.txt'), 'utf8')).toBe('');
  });
});
