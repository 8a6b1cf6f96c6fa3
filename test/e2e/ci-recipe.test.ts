import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, Sandbox } from '../helpers/sandbox.js';

/** The README's "discue in CI" recipe, run as the shell script a user would write. */
describe('discue in CI (README recipe)', () => {
  let sb: Sandbox;
  beforeEach(() => {
    sb = new Sandbox();
  });
  afterEach(async () => {
    await sb.dispose();
  });

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
