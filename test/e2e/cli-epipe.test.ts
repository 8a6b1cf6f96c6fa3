/**
 * A reader that goes away (`discue messages list q --json | head -c 100`)
 * ends the command quietly: exit 0, nothing on stderr, no stack trace. A
 * durable `listen` whose reader went away does not acknowledge the message
 * it could not write, so its next run gets it.
 */
import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ok } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

const sb = useSandbox('dq-epipe-');

/** How a process ended, and its stderr; stdout is left to the caller. */
function ending(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
}

/** Waits for the first bytes on the child's stdout, then closes the reading end, as `head -c` does. */
async function readThenClose(child: ChildProcess, until: (text: string) => boolean): Promise<string> {
  let text = '';
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (!until(text)) return;
      child.stdout!.off('data', onData);
      child.stdout!.destroy();
      resolve();
    };
    child.stdout!.on('data', onData);
  });
  return text;
}

describe('a closed stdout', () => {
  it('ends messages list --json quietly with exit 0', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    // About 2 MB of JSON: far more than a pipe holds, so the command is still
    // writing when its reader goes away.
    const padding = 'x'.repeat(500);
    await ok(sb, ['publish', 'q'], Array.from({ length: 4000 }, (_, i) => JSON.stringify({ data: `${i} ${padding}` }) + '\n').join(''));
    const child = sb.spawn(['messages', 'list', 'q', '--json', '--limit', '4000']);
    child.stdin!.end();
    const ended = ending(child);
    const head = await readThenClose(child, (text) => text.length >= 100);
    expect(head.startsWith('[{"id":"')).toBe(true);
    const result = await ended;
    expect(result.stderr).toBe('');
    expect([result.code, result.signal]).toEqual([0, null]);
  });

  it('ends listen quietly with exit 0, and a --name listen keeps the message it could not print', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const child = sb.spawn(['listen', 'q', '--name', 'reader']);
    child.stdin!.end();
    const ended = ending(child);
    const printed = readThenClose(child, (text) => text.includes('first\n'));
    await waitFor(
      async () => {
        const list = JSON.parse(await ok(sb, ['listener', 'list', '--json'])) as { name?: string; connected?: boolean }[];
        return list.some((l) => l.name === 'reader' && l.connected);
      },
      20_000,
      'the listen to connect',
    );
    await ok(sb, ['publish', 'q', '--data', 'first']);
    await printed;
    // Written after the reader went away: the write fails, so it is not acknowledged.
    await ok(sb, ['publish', 'q', '--data', 'second']);
    const result = await ended;
    expect(result.stderr).toBe('');
    expect([result.code, result.signal]).toEqual([0, null]);

    const again = await sb.run(['listen', 'q', '--name', 'reader', '--count', '1', '--timeout', '20s']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe('second\n');
  });
});
