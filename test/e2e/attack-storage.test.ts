/**
 * kill -9 of the daemon at the moment a full disk is freed and many
 * publishes arrive at once: the first write after the space came back
 * reopens the database (storage guard), and the kill lands before, during
 * or after that reopen. DISCUE_HOME lives on a small tmpfs (needs root, as
 * in storage-faults.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, isDiscueError } from '../../src/index.js';
import { listAll, ok, statusPid, waitForExit } from '../helpers/discue.js';
import { ROOT_USER, fillDisk } from '../helpers/disk.js';
import { useSandbox } from '../helpers/sandbox.js';

const TITLE = ROOT_USER
  ? 'attack: kill -9 while a full disk is freed'
  : 'attack: kill -9 while a full disk is freed (SKIPPED: mounting a small tmpfs needs root)';

describe.skipIf(!ROOT_USER)(TITLE, () => {
  const sb = useSandbox('dq-atkfull-');
  beforeEach(() => {
    mkdirSync(sb.home, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', sb.home]);
  });
  afterEach(async () => {
    execFileSync('umount', ['-l', sb.home]);
  });

  it('5 rounds: disk full, STORAGE_FULL, space freed with 40 publishes arriving, kill -9 a few ms later: every acknowledged message survives, the counters match, the daemon starts each time', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const acked = new Map<string, string>();
    for (let round = 0; round < 5; round++) {
      const client = await connect({ home: sb.home, requestTimeoutMs: 20_000 });
      sb.onDispose(() => client.close());
      const pid = await statusPid(sb);
      const filler = fillDisk(sb.home);
      // Large enough to need space LevelDB does not have: STORAGE_FULL, the database stuck.
      const refused = await client.publish('q', { data: `full-${round}-` + 'x'.repeat(200_000) }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isDiscueError(refused) && refused.code, String(refused)).toBe('STORAGE_FULL');

      rmSync(filler);
      // Rounds 0-2 kill after 0, 3, 6 ms (before or during the reopen, on a busy machine
      // usually before anything is stored); rounds 3-4 kill from inside the reply that
      // made 1 or 20 acknowledged this round, so the others are being written.
      const killAtAck = round >= 3 ? [1, 20][round - 3]! : undefined;
      let ackedThisRound = 0;
      const kill = () => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already killed this round
        }
      };
      const publishes = Array.from({ length: 40 }, (_, i) => {
        const data = `r${round}-m${i}`;
        return client.publish('q', { data }).then(
          (result) => {
            acked.set(data, result.ids[0]!);
            if (++ackedThisRound === killAtAck) kill();
          },
          (err: unknown) => expect(isDiscueError(err), String(err)).toBe(true),
        );
      });
      if (killAtAck === undefined) {
        await new Promise((resolve) => setTimeout(resolve, round * 3));
        kill();
      }
      await Promise.all(publishes);
      kill(); // in case fewer than killAtAck were acknowledged
      await waitForExit(pid);
      await client.close().catch(() => undefined);

      // The next command starts a daemon on the same database: not refused as damaged.
      const stored = await listAll(sb, 'q');
      const byData = new Map(stored.map((m) => [m.data, m.id]));
      for (const [data, id] of acked) expect(byData.get(data), `acknowledged ${data}`).toBe(id);
      for (const m of stored) expect(m.data).toMatch(/^r\d-m\d+$/);
      const [info] = JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as { messages: number }[];
      expect(info!.messages).toBe(stored.length);
    }
    expect(acked.size).toBeGreaterThan(0);
    // And it still takes writes.
    await ok(sb, ['publish', 'q', '--data', 'after']);
  });
});
