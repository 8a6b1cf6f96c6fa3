/**
 * `discue daemon repair`, offline, under the home's daemon lock (lock.ts):
 * while a daemon runs, the repair is refused before anything is copied or
 * rewritten; while the repair runs, no daemon (auto-started by another
 * command) can open the database it is rebuilding. Checking for a live
 * daemon first and repairing after would leave that window open.
 */
import { mkdir } from 'node:fs/promises';
import { repairBackend } from '../backend/index.js';
import type { RepairReport } from '../backend/index.js';
import { DiscueError } from '../protocol/errors.js';
import type { BrokerPaths } from '../protocol/paths.js';
import type { StoreLocation } from '../protocol/store.js';
import { acquireHomeLock } from './lock.js';

export type { RepairReport };

export async function repairHome(paths: BrokerPaths, store: StoreLocation): Promise<RepairReport> {
  // A home where no daemon ever ran has no run/ for the lock yet.
  await mkdir(paths.runDir, { recursive: true, mode: 0o700 });
  let release: () => Promise<void>;
  try {
    release = await acquireHomeLock(paths.daemonLock);
  } catch (err) {
    if (!(err instanceof DiscueError && err.code === 'ALREADY_RUNNING')) throw err;
    const pid = (err.details as { pid?: number } | undefined)?.pid;
    throw new DiscueError(
      'ALREADY_RUNNING',
      `the daemon${pid === undefined ? '' : ` (pid ${pid})`} runs for ${paths.home}; nothing was changed. Stop it first with \`discue daemon stop\`, then repair`,
      { cause: err },
    );
  }
  try {
    return await repairBackend(store);
  } finally {
    await release();
  }
}
