/**
 * File descriptors a process was handed by whoever started it, closed.
 *
 * A daemon started by `discue publish` in a script inherits every descriptor
 * of that script not marked close-on-exec: a pipe a CI runner or `$(...)`
 * waits on for end-of-file, a jobserver. Held for the daemon's life, it
 * hangs the caller after discue has exited (as daemon(3)'s closefrom
 * prevents). And the spawner inherits the daemon's LevelDB files, which
 * LevelDB opens without close-on-exec, so every command a listener ran held
 * the write-ahead log, LOCK and MANIFEST open for writing.
 *
 * Node opens all of its own descriptors close-on-exec, so at start-up a
 * descriptor above 2 without the flag can only have been inherited. Linux
 * only (/proc); elsewhere nothing is closed.
 */
import { closeSync, readdirSync, readFileSync } from 'node:fs';

/** O_CLOEXEC as /proc/PID/fdinfo prints it (octal flags), on every architecture Node supports on Linux. */
const O_CLOEXEC = 0o2000000;

/** Closes the descriptors above 2 this process inherited, except `keep`; returns them. Call before opening anything. */
export function closeInheritedFds(keep: readonly number[] = []): number[] {
  if (process.platform !== 'linux') return [];
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > 2) || keep.includes(fd)) continue;
    let flags: number;
    try {
      const match = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!match) continue;
      flags = Number.parseInt(match[1]!, 8);
    } catch {
      continue; // the directory listing's own descriptor, already closed
    }
    if ((flags & O_CLOEXEC) !== 0) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {
      // gone meanwhile
    }
  }
  return closed;
}
