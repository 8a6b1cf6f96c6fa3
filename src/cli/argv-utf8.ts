/**
 * Arguments that are not UTF-8. Node decodes argv with U+FFFD in place of
 * such bytes, so `--data "$(cat latin1.txt)"` (or a name, a key, an --exec
 * command) was stored altered, where the same text on stdin is refused. The
 * raw bytes are only in /proc/self/cmdline (Linux), read only when an
 * argument holds U+FFFD; elsewhere nothing can be told and nothing changes.
 */
import { readFileSync } from 'node:fs';
import { DiscueError } from '../protocol/errors.js';

export function assertArgvUtf8(argv: string[] = process.argv): void {
  if (!argv.some((arg) => arg.includes('\uFFFD'))) return;
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return;
  }
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let start = 0; start < raw.length; ) {
    const nul = raw.indexOf(0, start);
    const end = nul === -1 ? raw.length : nul;
    const arg = raw.subarray(start, end);
    start = end + 1;
    try {
      decoder.decode(arg);
    } catch {
      throw new DiscueError(
        'INVALID_ARGUMENT',
        `the argument ${JSON.stringify(arg.toString('utf8'))} is not valid UTF-8; discue stores text exactly as given, so convert it first (e.g. iconv -t UTF-8)`,
      );
    }
  }
}
