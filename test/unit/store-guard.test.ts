import { join } from 'node:path';
import type { ClassicLevel } from 'classic-level';
import { beforeEach, describe, expect, it } from 'vitest';
import { DiscueError } from '../../src/protocol/errors.js';
import { StorageGuard } from '../../src/backend/level/guard.js';
import { tmpDir } from '../helpers/tmp.js';

/** The part of ClassicLevel the guard drives: status, close, open; records the order of events. */
class FakeDb {
  status: 'open' | 'closing' | 'closed' = 'open';
  events: string[] = [];
  /** When set, close() waits for it (a close in progress). */
  closing: Promise<void> | undefined;
  async close(): Promise<void> {
    this.events.push('close');
    this.status = 'closing';
    await this.closing;
    this.status = 'closed';
  }
  async open(): Promise<void> {
    this.events.push('open');
    this.status = 'open';
  }
}

const enospc = Object.assign(new Error('IO error: /x/000003.log: No space left on device'), { code: 'LEVEL_IO_ERROR' });

describe('StorageGuard', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('discue-guard-');
  });

  it('turns ENOSPC into STORAGE_FULL naming the directory, and reopens before the next write once there is room', async () => {
    const db = new FakeDb();
    const guard = new StorageGuard(db as unknown as ClassicLevel<string, string>, dir);
    const err = guard.failed(enospc);
    expect(err).toBeInstanceOf(DiscueError);
    expect((err as DiscueError).code).toBe('STORAGE_FULL');
    expect(err.message).toContain(dir);
    expect(guard.full).toBe(true);
    await guard.beforeWrite(10); // the temp dir has room
    expect(db.events).toEqual(['close', 'open']);
    expect(guard.full).toBe(false);
    await guard.beforeWrite(10);
    expect(db.events).toEqual(['close', 'open']); // not stuck: no second reopen
  });

  it('fails fast, without closing the database for reads, while there is still no room', async () => {
    const db = new FakeDb();
    const guard = new StorageGuard(db as unknown as ClassicLevel<string, string>, dir);
    guard.failed(enospc);
    await expect(guard.beforeWrite(Number.MAX_SAFE_INTEGER)).rejects.toMatchObject({ code: 'STORAGE_FULL' });
    expect(db.events).toEqual([]);
    expect(db.status).toBe('open');
  });

  it('never closes the database under an operation in progress; operations arriving during the reopen wait for it', async () => {
    const db = new FakeDb();
    const guard = new StorageGuard(db as unknown as ClassicLevel<string, string>, dir);
    const until = async (event: string) => {
      while (!db.events.includes(event)) await new Promise((r) => setImmediate(r));
    };
    let finishRead!: () => void;
    const read = guard.use(async () => {
      db.events.push('read starts');
      await new Promise<void>((resolve) => (finishRead = resolve));
      db.events.push(`read ends (${db.status})`);
    });
    await until('read starts');
    guard.failed(enospc);
    let finishClose!: () => void;
    db.closing = new Promise<void>((resolve) => (finishClose = resolve));
    const write = guard.beforeWrite(10);
    finishRead();
    await until('close');
    // Arrives while the database is closing: must neither fail nor run now.
    const late = guard.use(async () => db.events.push(`late read (${db.status})`));
    await new Promise((r) => setImmediate(r));
    expect(db.events).toEqual(['read starts', 'read ends (open)', 'close']);
    finishClose();
    await Promise.all([read, write, late]);
    expect(db.events).toEqual(['read starts', 'read ends (open)', 'close', 'open', 'late read (open)']);
  });
});
