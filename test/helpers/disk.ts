/**
 * A small file system to fill: the disk-full tests mount a tmpfs (root only)
 * and fill it with this until it refuses another byte.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Mounting a small tmpfs needs root; CI runs as root. */
export const ROOT_USER = process.getuid?.() === 0;

/** Writes a filler file until the file system refuses another byte; returns its path. */
export function fillDisk(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 64 * 1024, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x61);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}
