import { open } from 'node:fs/promises';

/** The last `lines` lines of a file, or '' if it cannot be read. Reads at most 64 KiB. */
export async function tailFile(path: string, lines = 15): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const text = buffer.toString('utf8').replace(/\n+$/, '');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    await handle?.close();
  }
}

/** Appends the daemon log's tail to an error message, the way a user needs it to see why the daemon died. */
export async function withLogTail(message: string, logFile: string): Promise<string> {
  const tail = await tailFile(logFile);
  if (!tail) return message;
  return `${message}\n--- last lines of ${logFile} ---\n${tail}`;
}
