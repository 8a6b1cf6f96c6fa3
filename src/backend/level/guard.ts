/**
 * Keeps the database usable through storage faults.
 *
 * When a write fails for lack of space, LevelDB remembers the error
 * ("background error") and refuses every later write until the database is
 * opened again, even once space is free. Reads keep working. So a write
 * that fails with an I/O error marks the database stuck; the next write
 * first checks that there is room again, and if there is, closes and
 * reopens the database; if not, it fails at once with STORAGE_FULL and the
 * database stays open for reads.
 *
 * The race this prevents: closing the database while a read iterates, or a
 * batch or clear is being written, would fail that operation with
 * LEVEL_DATABASE_NOT_OPEN (abstract-level closes open iterators on close).
 * Every operation on the database runs inside use(); a reopen waits until
 * none is running, and operations that arrive during the reopen wait for it
 * to finish.
 */
import type { ClassicLevel } from 'classic-level';
import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { DiscueError } from '../../protocol/errors.js';
import type { StoreLog } from '../types.js';

/** Free space kept in hand beyond what the reopen and the batch need. */
const MARGIN_BYTES = 64 * 1024;

export class StorageGuard {
  private users = 0;
  private idle: (() => void)[] = [];
  private reopening: Promise<void> | undefined;
  /** Set while LevelDB refuses writes after an I/O error; cleared by a reopen. */
  private error: DiscueError | undefined;
  /** Closed for good (the daemon stops): never reopened. */
  private shut = false;

  constructor(
    private readonly db: ClassicLevel<string, string>,
    private readonly location: string,
    private readonly log?: StoreLog,
  ) {}

  /** The store is closing the database for good: no reopen from now on. */
  async close(): Promise<void> {
    this.shut = true;
    while (this.reopening) await this.reopening.catch(() => undefined);
  }

  /** True while LevelDB refuses writes: the next write must go through beforeWrite(). */
  get stuck(): boolean {
    return this.error !== undefined && !this.shut;
  }

  /** True while writes fail for lack of space. */
  get full(): boolean {
    return this.error?.code === 'STORAGE_FULL';
  }

  /** Runs an operation on the open database, never overlapping a reopen. */
  async use<T>(fn: () => Promise<T>): Promise<T> {
    while (this.reopening) await this.reopening.catch(() => undefined);
    // Closed by a failed reopen: try again. Closed by close(): the operation fails as it would without the guard.
    if (this.db.status !== 'open' && !this.shut) await this.reopen();
    this.users++;
    try {
      return await fn();
    } finally {
      if (--this.users === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /**
   * Called by the committer before each batch (none in flight). Fails fast
   * while the disk is still full; reopens once there is room again.
   */
  async beforeWrite(bytes: number): Promise<void> {
    const error = this.error;
    if (error === undefined || this.shut) return;
    if (!(await this.hasRoom(bytes))) throw error;
    await this.reopen();
  }

  /** The error a caller sees for a failed write; marks the database stuck if LevelDB will keep failing. */
  failed(err: unknown): Error {
    if (err instanceof DiscueError) return err;
    const cause = errorCause(err);
    const text = cause.message;
    if (/No space left on device|Disk quota exceeded|ENOSPC|EDQUOT/i.test(text)) {
      const full = new DiscueError(
        'STORAGE_FULL',
        `no space left for the data directory ${this.location}; free some space there (or raise the quota): writes resume by themselves, reads still work`,
        { cause: err },
      );
      if (this.error?.code !== 'STORAGE_FULL') this.log?.error('storage full: writes refused until space is free', { data: this.location, error: text });
      this.error = full;
      return full;
    }
    if (cause.code === 'LEVEL_IO_ERROR') {
      this.error ??= new DiscueError('STORAGE_ERROR', `cannot write to the data directory ${this.location}: ${text}`, { cause: err });
      this.log?.error('storage write failed', { data: this.location, error: text });
      return this.error;
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private reopen(): Promise<void> {
    this.reopening ??= (async () => {
      try {
        while (this.users > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
        if (this.db.status === 'open') await this.db.close();
        await this.db.open({ createIfMissing: false });
        if (this.error) this.log?.info('storage writable again: database reopened', { data: this.location });
        this.error = undefined;
      } catch (err) {
        throw this.failed(err);
      } finally {
        this.reopening = undefined;
      }
    })();
    return this.reopening;
  }

  /**
   * Room for the reopen (LevelDB rewrites its write-ahead logs into a table
   * when it opens) and the batch, with a margin.
   */
  private async hasRoom(bytes: number): Promise<boolean> {
    try {
      const fs = await statfs(this.location);
      let logs = 0;
      for (const name of await readdir(this.location)) {
        if (name.endsWith('.log')) logs += (await stat(join(this.location, name)).catch(() => ({ size: 0 }))).size;
      }
      return fs.bavail * fs.bsize >= logs + bytes + MARGIN_BYTES;
    } catch {
      return true; // no statfs here: try the reopen and let it tell
    }
  }
}

/** classic-level wraps the LevelDB error (with the text that says what happened) in `cause`. */
export function errorCause(err: unknown): { message: string; code?: string } {
  let current = err as { message?: string; code?: string; cause?: unknown } | undefined;
  while (current?.cause !== undefined && typeof current.cause === 'object' && current.cause !== null) {
    current = current.cause as typeof current;
  }
  return { message: String(current?.message ?? err), code: current?.code };
}
