import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, useSandbox, waitFor } from '../helpers/sandbox.js';

// On LevelDB only: the progress line is the CLI's, drawn from its own count of acknowledged lines
// whatever the backend (publishing on NATS is in idempotency and the delivery tests).
describe('progress line of a large NDJSON publish', () => {
  const sb = useSandbox();
  let session: string;
  const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  beforeEach(() => {
    session = `discue-progress-${process.pid}-${Date.now()}`;
  });
  afterEach(async () => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      // already gone
    }
  });

  const COUNT = 20_000;
  const writeInput = () => {
    const file = join(sb.dir, 'big.ndjson');
    writeFileSync(file, Array.from({ length: COUNT }, (_, i) => JSON.stringify({ data: `event ${i}` })).join('\n') + '\n');
    return file;
  };

  it('shows count and rate on a terminal', async () => {
    expect((await sb.run(['queue', 'create', 'bulk'])).code).toBe(0);
    const file = writeInput();
    const ids = join(sb.dir, 'ids.txt');
    const done = join(sb.dir, 'done');
    const env = Object.entries(sb.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    tmux(
      'new-session', '-d', '-s', session, '-x', '120', '-y', '20',
      `env ${env} ${process.execPath} ${BIN} publish bulk < ${file} > ${ids}; echo "exit=$?" > ${done}; sleep 60`,
    );
    // Read in-process: `cat` on a file that does not exist yet printed its
    // "No such file" to the test run's stderr on every poll.
    await waitFor(() => existsSync(done) && readFileSync(done, 'utf8').includes('exit=0'), 60_000, 'the publish to finish');
    const screen = tmux('capture-pane', '-p', '-t', session);
    expect(screen).toMatch(/published 20,000 messages · [\d,]+\/s/);
    expect(execFileSync('wc', ['-l', ids], { encoding: 'utf8' }).trim()).toMatch(/^20000 /);
  });

  it('prints nothing extra when piped', async () => {
    expect((await sb.run(['queue', 'create', 'bulk'])).code).toBe(0);
    const file = writeInput();
    const result = await sb.run(['publish', 'bulk'], { input: execFileSync('cat', [file], { encoding: 'utf8' }), timeoutMs: 60_000 });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n')).toHaveLength(COUNT);
  });
});
