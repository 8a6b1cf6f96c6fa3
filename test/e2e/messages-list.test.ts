/**
 * `messages list` at scale, through the real binary: the hint when more
 * follow, --all as NDJSON in constant memory with back-pressure, -q for ids,
 * --fields to pick fields without jq.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { expectError, ndjson, ok } from '../helpers/discue.js';
import type { StoredMessage } from '../helpers/discue.js';
import { BIN, collect, waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';

describeBackends('messages list at scale', (backend) => {
  const sb = useBackendSandbox();

  async function publish(queue: string, datas: string[]): Promise<string[]> {
    return (await ok(sb, ['publish', queue], ndjson(datas))).trim().split('\n');
  }

  it('says when more messages follow, and the command it names gets them, page after page', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const ids = await publish('q', ['a', 'b', 'c', 'd', 'e']);

    const seen: string[] = [];
    let args = ['messages', 'list', 'q', '--limit', '2'];
    for (let page = 0; page < 5; page++) {
      const result = await sb.run(args);
      expect(result.code).toBe(0);
      seen.push(...result.stdout.trim().split('\n').slice(1).map((row) => row.split(/\s+/)[0]!));
      const hint = /^more messages: discue (messages list q --since ([0-9A-Z]{26}) --limit 2) \(or --all for every one\)$/m.exec(result.stderr);
      if (!hint) {
        expect(result.stderr).toBe('');
        break;
      }
      expect(hint[2]).toBe(seen[seen.length - 1]);
      args = hint[1]!.split(' ');
    }
    expect(seen).toEqual(ids);

    // --json: stdout stays the plain array; the hint is JSON on stderr.
    const json = await sb.run(['messages', 'list', 'q', '--limit', '3', '--json']);
    expect((JSON.parse(json.stdout) as StoredMessage[]).map((m) => m.id)).toEqual(ids.slice(0, 3));
    expect(JSON.parse(json.stderr)).toEqual({ next: { since: ids[2] } });
    // Exactly the limit left: no hint.
    const last = await sb.run(['messages', 'list', 'q', '--since', ids[2]!, '--limit', '2', '--json']);
    expect((JSON.parse(last.stdout) as StoredMessage[]).map((m) => m.id)).toEqual(ids.slice(3));
    expect(last.stderr).toBe('');
  });

  it('-q prints only ids; --fields picks fields for the table and for JSON', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const long = 'x'.repeat(200);
    const ids = (await ok(sb, ['publish', 'q'], '{"data":"first","name":"order.created"}\n' + JSON.stringify({ data: long }) + '\n')).trim().split('\n');

    expect(await ok(sb, ['messages', 'list', 'q', '-q'])).toBe(ids.join('\n') + '\n');
    expect(await ok(sb, ['messages', 'list', 'q', '--quiet', '--json'])).toBe(ids.join('\n') + '\n');

    const table = (await ok(sb, ['messages', 'list', 'q', '--fields', 'name,id'])).split('\n');
    expect(table[0]).toMatch(/^NAME\s+ID$/);
    expect(table[1]).toMatch(new RegExp(`^order\\.created\\s+${ids[0]}$`));
    expect(table[2]).toMatch(new RegExp(`^-\\s+${ids[1]}$`));
    // One field: the values alone, whole (not cut to the table's width).
    expect(await ok(sb, ['messages', 'list', 'q', '--fields', 'data'])).toBe(`first\n${long}\n`);
    // The default table, piped, keeps data whole too (it was cut at 60 characters).
    const rows = (await ok(sb, ['messages', 'list', 'q'])).trimEnd().split('\n');
    expect(rows[2]).toMatch(new RegExp(`^${ids[1]}\\s.*\\s${long}$`));

    const picked = JSON.parse(await ok(sb, ['messages', 'list', 'q', '--fields', 'id,name', '--json'])) as Record<string, unknown>[];
    expect(picked).toEqual([{ id: ids[0], name: 'order.created' }, { id: ids[1] }]);
    expect(Object.keys(picked[0]!)).toEqual(['id', 'name']);

    const bad = await sb.run(['messages', 'list', 'q', '--fields', 'id,dta']);
    expectError(bad, 2, 'INVALID_ARGUMENT');
    expect(bad.stderr).toContain('unknown field "dta"; did you mean "data"?');
  });

  it('--all streams every message as NDJSON across pages, from --since on, and stops quietly when the reader goes', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const datas = Array.from({ length: 250 }, (_, i) => `event ${i}`);
    const ids = await publish('q', datas);

    const all = await sb.run(['messages', 'list', 'q', '--all']);
    expect(all.code).toBe(0);
    expect(all.stderr).toBe('');
    const lines = all.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as StoredMessage);
    expect(lines.map((m) => [m.id, m.data])).toEqual(ids.map((id, i) => [id, datas[i]]));
    expect(Object.keys(lines[0]!).sort()).toEqual(['data', 'id', 'publishedAt', 'queue']);

    const rest = await ok(sb, ['messages', 'list', 'q', '--all', '--since', ids[199]!, '--fields', 'data']);
    expect(rest.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual(datas.slice(200).map((data) => ({ data })));
    expect(await ok(sb, ['messages', 'list', 'q', '--all', '-q'])).toBe(ids.join('\n') + '\n');
    expectError(await sb.run(['messages', 'list', 'q', '--all', '--limit', '5']), 2, 'USAGE');

    // `| head -1`: the pipe closes under it; no EPIPE crash, exit 0.
    const head = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" messages list q --all | head -1`], {
      cwd: sb.dir,
      env: sb.env,
    });
    const piped = await collect(head);
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);
    expect((JSON.parse(piped.stdout) as StoredMessage).id).toBe(ids[0]);
  });

  // On LevelDB only: the bound is the CLI's (it asks for the next page once stdout drained); the
  // backend's paging is what the tests above check on both.
  it.skipIf(backend.kind === 'nats')('--all holds at most a page in memory while the reader does not read (back-pressure)', async () => {
    await ok(sb, ['queue', 'create', 'big']);
    await ok(sb, ['queue', 'create', 'small']);
    const data = 'y'.repeat(4096);
    // 10,000 messages of 4 KiB: 40 MiB that a lister without back-pressure would buffer.
    for (let batch = 0; batch < 10; batch++) await publish('big', Array.from({ length: 1000 }, () => data));
    await publish('small', Array.from({ length: 300 }, () => data));

    /**
     * Starts `--all` with nobody reading its stdout, waits until it stops
     * using CPU (blocked on the full pipe, or done fetching), and returns its
     * peak RSS; then reads everything and checks it all arrived.
     */
    const peakWhileBlocked = async (queue: string, count: number): Promise<number> => {
      const child = sb.spawn(['messages', 'list', queue, '--all']);
      child.stdout!.pause();
      const pid = child.pid!;
      let last = -1;
      let still = 0;
      await waitFor(
        () => {
          const ticks = cpuTicks(pid);
          still = ticks === last ? still + 1 : 0;
          last = ticks;
          // About a second without CPU: blocked (or, without back-pressure, done fetching).
          return still >= 40;
        },
        60_000,
        `discue messages list ${queue} to settle`,
      );
      const peak = peakRss(pid);
      const result = collect(child, { timeoutMs: 60_000 });
      child.stdout!.resume();
      const { code, stdout } = await result;
      expect(code).toBe(0);
      expect(stdout.trim().split('\n')).toHaveLength(count);
      return peak;
    };
    const small = await peakWhileBlocked('small', 300);
    const big = await peakWhileBlocked('big', 10_000);
    // Without back-pressure every page would be fetched and queued in stdout's
    // buffer: 40 MiB more. With it, the pipe and one page (400 KiB) at most.
    expect(big - small, `peak RSS ${big} KiB for 40 MiB of messages, ${small} KiB for 1.2 MiB`).toBeLessThan(20 * 1024);
  });
});

/** utime + stime of a process, in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Peak resident set size of a process, in KiB. */
function peakRss(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}
