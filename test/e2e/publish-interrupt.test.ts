/**
 * Ctrl-C during an NDJSON `publish`: the batch already sent is answered and
 * its ids printed before the CLI exits 130, so every stored message's id
 * was seen by whoever ran it; nothing read after the Ctrl-C is sent.
 * Killed at once (the default for SIGINT), the CLI left a stored batch
 * whose ids nobody saw (seen: 165,000 ids printed, 166,000 stored).
 */
import { describe, expect, it } from 'vitest';
import { listAll, messageCount, ok } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

const sb = useSandbox('dq-int-');

/** NDJSON lines m<from>..m<from+n-1>. */
function lines(from: number, n: number): string {
  let out = '';
  for (let i = from; i < from + n; i++) out += JSON.stringify({ data: `m${i}` }) + '\n';
  return out;
}

describe('publish interrupted', () => {
  for (const json of [false, true]) {
    it(`Ctrl-C mid-stream${json ? ' (--json)' : ''}: exit 130, and the ids printed are exactly the messages stored`, async () => {
      await ok(sb, ['queue', 'create', 'q']);
      const child = sb.spawn(['publish', 'q', ...(json ? ['--json'] : [])]);
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      // Not collect(): it ends stdin at once.
      const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      child.stdin!.on('error', () => undefined); // the CLI stops reading: EPIPE here is expected
      // Keep the pipe full, so a batch is in flight most of the time.
      let sent = 0;
      let writing = true;
      const pump = () => {
        while (writing && child.stdin!.writable) {
          const more = child.stdin!.write(lines(sent, 500));
          sent += 500;
          if (!more) return void child.stdin!.once('drain', pump);
        }
      };
      pump();
      // Some batches stored first (their ids printed; under --json they come at the end, so wait for the queue).
      await waitFor(
        async () => (json ? (await messageCount(sb, 'q')) >= 3000 : stdout.split('\n').length > 3000),
        60_000,
        'a few batches stored',
      );
      child.kill('SIGINT');
      const code = await closed;
      writing = false;
      expect(code, stderr).toBe(130);
      expect(stderr).toContain('INTERRUPTED');
      expect(stderr).toMatch(/interrupted: [\d,]+ messages stored, every id printed/);
      const printed = json ? (JSON.parse(stdout.trim()) as { ids: string[] }).ids : stdout.split('\n').filter((line) => line !== '');
      const stored = (await listAll(sb, 'q')).map((m) => m.id);
      expect(printed.length).toBeGreaterThan(0);
      // Every stored message's id was printed, and nothing else.
      expect(stored).toEqual(printed);
      // In the order of the input, with no line skipped.
      expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(Array.from({ length: stored.length }, (_, i) => `m${i}`));
    });
  }
});
