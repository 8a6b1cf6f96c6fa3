/**
 * Damaged database files, through the real binary: stop the daemon, damage
 * the files as a disk or a careless hand would, start again, and check that
 * nothing is served silently: a start that cannot be trusted is refused
 * with the cause and the next step, `daemon repair` salvages, altered
 * records are reported and skipped, a torn log is reported.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { beforeEach, describe, expect, it } from 'vitest';
import { expectError, listAll, ndjson, ok } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

describe('storage damage', () => {
  const sb = useSandbox();
  let dataDir: string;
  beforeEach(() => {
    dataDir = join(sb.home, 'data');
  });

  /** Publishes in rounds with a restart between them, so most data sits in table files, the rest in the log. */
  async function publishInRounds(rounds: number, perRound: number): Promise<string[]> {
    const datas: string[] = [];
    await ok(sb, ['queue', 'create', 'q']);
    for (let r = 0; r < rounds; r++) {
      const round = Array.from({ length: perRound }, (_, i) => `r${r}-m${i}`);
      await ok(sb, ['publish', 'q'], ndjson(round));
      datas.push(...round);
      await ok(sb, ['daemon', 'stop']);
    }
    return datas;
  }

  it('refuses to start over a data directory whose CURRENT is gone, and `daemon repair` recovers every message', async () => {
    const datas = await publishInRounds(4, 100);
    expect(readdirSync(dataDir).some((n) => n.endsWith('.ldb'))).toBe(true);
    rmSync(join(dataDir, 'CURRENT'));
    const before = readdirSync(dataDir).sort();

    const start = await sb.run(['daemon', 'start', '--foreground']);
    expectError(start, 1, 'STORAGE_DAMAGED');
    expect(start.stderr).toContain(dataDir);
    expect(start.stderr).toContain('no CURRENT file');
    expect(start.stderr).toContain('discue daemon repair');
    // Nothing was created or deleted: the old tables are all still there.
    expect(existsSync(join(dataDir, 'CURRENT'))).toBe(false);
    for (const name of before.filter((n) => /\.(ldb|log)$/.test(n))) expect(existsSync(join(dataDir, name)), name).toBe(true);
    // An auto-start says the same (through the log tail), and fails.
    const auto = await sb.run(['queue', 'list']);
    expect(auto.code).not.toBe(0);
    expect(auto.stderr).toContain('discue daemon repair');

    const repair = await sb.run(['daemon', 'repair', '--json']);
    expect(repair.code, repair.stderr).toBe(0);
    const report = JSON.parse(repair.stdout) as { backup: string; queues: number; messages: number; damaged: number };
    expect(report).toMatchObject({ queues: 1, messages: 400, damaged: 0 });
    // The untouched copy: exactly the files as they were before the repair.
    expect(report.backup.startsWith(dataDir + '.bak-')).toBe(true);
    expect(readdirSync(report.backup).sort()).toEqual(before);

    const stored = await listAll(sb, 'q');
    expect(stored.map((m) => m.data)).toEqual(datas);
    const [info] = JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as { messages: number }[];
    expect(info!.messages).toBe(400);
  });

  it('a damaged table file: the start names LevelDB\'s cause and the next step, instead of "could not start"', async () => {
    await publishInRounds(2, 10);
    const table = readdirSync(dataDir).filter((n) => n.endsWith('.ldb')).sort()[0]!;
    const bytes = readFileSync(join(dataDir, table));
    bytes.fill(0, bytes.length - 48); // the footer, with its magic number
    writeFileSync(join(dataDir, table), bytes);

    const start = await sb.run(['daemon', 'start', '--foreground']);
    expectError(start, 1, 'STORAGE_DAMAGED');
    expect(start.stderr).toContain('Corruption: not an sstable');
    expect(start.stderr).toContain(dataDir);
    expect(start.stderr).toContain('discue daemon repair');
  });

  it('`daemon repair` refuses while the daemon runs, and changes nothing', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const repair = await sb.run(['daemon', 'repair']);
    expectError(repair, 1, 'ALREADY_RUNNING');
    expect(repair.stderr).toContain('discue daemon stop');
    expect(readdirSync(sb.home).filter((n) => n.startsWith('data.bak-'))).toEqual([]);
  });

  it('a flipped byte in a stored message: that message is reported and skipped, never served; the others are listed and delivered', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const datas = Array.from({ length: 5 }, () => randomBytes(48).toString('hex'));
    const ids = (await ok(sb, ['publish', 'q'], ndjson(datas))).trim().split('\n');
    // A restart moves the messages from the log into a table file, which
    // LevelDB does not checksum on reads.
    await ok(sb, ['daemon', 'stop']);
    await ok(sb, ['daemon', 'start']);
    await ok(sb, ['daemon', 'stop']);
    const victim = datas[2]!;
    let flipped = '';
    for (const name of readdirSync(dataDir).filter((n) => n.endsWith('.ldb'))) {
      const bytes = readFileSync(join(dataDir, name));
      // Any stretch of the data stored verbatim (the table may compress around it).
      for (let at = 0; at + 16 <= victim.length && !flipped; at++) {
        const where = bytes.indexOf(victim.slice(at, at + 16));
        if (where < 0) continue;
        const c = bytes[where + 8]!;
        bytes[where + 8] = c >= 0x61 ? c - 0x20 : c === 0x30 ? 0x31 : 0x30; // still valid JSON text
        writeFileSync(join(dataDir, name), bytes);
        flipped = name;
      }
    }
    expect(flipped, 'the message was found in a table file').not.toBe('');

    const list = await sb.run(['messages', 'list', 'q', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as { id: string; data: string }[];
    expect(listed.map((m) => m.data)).toEqual([datas[0], datas[1], datas[3], datas[4]]);
    // Under --json the warning is JSON too: stderr carries JSON only.
    expect((JSON.parse(list.stderr.trim()) as { warning: { message: string } }).warning.message).toMatch(/^1 damaged message skipped: it failed its checksum/);

    const get = await sb.run(['messages', 'get', 'q', ids[2]!]);
    expectError(get, 1, 'DATA_CORRUPT');
    expect(get.stderr).toContain(ids[2]);
    expect(await ok(sb, ['messages', 'get', 'q', ids[3]!])).toContain(datas[3]);

    const status = await sb.run(['daemon', 'status', '--json']);
    expect((JSON.parse(status.stdout) as { warnings?: string[] }).warnings?.join('\n')).toContain('1 damaged record(s)');
    expect(sb.log()).toContain(`damaged record skipped (checksum mismatch); it is never served key=m!`);

    // Delivery skips it and records it dead, with the reason; the others arrive in order.
    const out = join(sb.dir, 'delivered.txt');
    await ok(sb, ['listener', 'add', '--queue', 'q', '--shell', '--exec', `cat >> ${out}; echo >> ${out}`, '--from', 'all', '--name', 'sink']);
    await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').trim().split('\n').length === 4, 20_000, 'four deliveries');
    expect(readFileSync(out, 'utf8').trim().split('\n')).toEqual([datas[0], datas[1], datas[3], datas[4]]);
    const dead = (await waitFor(async () => {
      const rows = JSON.parse(await ok(sb, ['deliveries', 'list', '--state', 'dead', '--json'])) as {
        messageId: string;
        attempts: { error?: string }[];
      }[];
      return rows.length > 0 ? rows : undefined;
    }, 20_000, 'the dead delivery record'))!;
    expect(dead.map((d) => d.messageId)).toEqual([ids[2]]);
    expect(dead[0]!.attempts[0]!.error).toContain('damaged');
  });

  it('a torn write-ahead log: the daemon starts, and says so in its log and in `daemon status`', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const datas = Array.from({ length: 10 }, (_, i) => `m${i}`);
    for (const data of datas) await ok(sb, ['publish', 'q', '--data', data]);
    await ok(sb, ['daemon', 'stop']);
    const log = readdirSync(dataDir).filter((n) => n.endsWith('.log')).sort().pop()!;
    const path = join(dataDir, log);
    truncateSync(path, readFileSync(path).length - 20);

    const start = await sb.run(['daemon', 'start']);
    expect(start.code, start.stderr).toBe(0);
    expect(start.stderr).toContain(`warning: the write-ahead log ${log}`);
    expect(start.stderr).toContain('torn record');
    const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { warnings?: string[] };
    expect(status.warnings?.join('\n')).toContain('torn record');
    expect(sb.log()).toContain('torn record');
    // What LevelDB kept is a prefix of what was published: the torn write is gone, nothing else.
    const stored = (await listAll(sb, 'q')).map((m) => m.data);
    expect(stored.length).toBeLessThan(datas.length);
    expect(stored).toEqual(datas.slice(0, stored.length));
  });

  it('reads a database of storage format 1 (records without checksums) and keeps writing to it', async () => {
    // Written as discue 0.1.0 laid it out, with classic-level directly.
    const db = new ClassicLevel<string, string>(dataDir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    await db.open();
    const qid = '01M8Q6F92620SJYRHSRTMMKRVQ';
    const old = ['01M8Q6F9HXFYDYC6FRZQJ0727N', '01M8Q6FA2W8NQ6720FZFHQT6DQ'];
    await db.put('meta!format', '1');
    await db.put('meta!lastId', old[1]!);
    await db.put('q!q', JSON.stringify({ name: 'q', qid, createdAt: '2026-11-30T21:41:14.000Z', messages: 2, bytes: 6, lastId: old[1] }));
    for (const [i, id] of old.entries()) {
      await db.put(`m!${qid}!${id}`, JSON.stringify({ id, queue: 'q', data: `old-${i}`, publishedAt: '2026-11-30T21:41:14.429Z' }));
    }
    await db.close();
    // classic-level made the directory with this process's umask; the daemon wants it private.
    chmodSync(dataDir, 0o700);

    await ok(sb, ['publish', 'q', '--data', 'new']);
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['old-0', 'old-1', 'new']);
    const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { warnings?: string[]; messages: number };
    expect(status.warnings).toBeUndefined();
    expect(status.messages).toBe(3);
  });
});
