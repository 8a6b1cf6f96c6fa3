/**
 * Reads the structure of a LevelDB write-ahead log (db/log_format.h): 32 KiB
 * blocks of records, each a 7-byte header (CRC-32C, length, type) and its
 * payload; a batch larger than what is left of a block is split into FIRST,
 * MIDDLE... LAST fragments. LevelDB's recovery treats a record cut off at the
 * end of the file as a writer that died mid-write and drops it without a
 * word; this finds such a tail so the daemon can say so.
 */
import { readFile } from 'node:fs/promises';

const BLOCK = 32 * 1024;
const HEADER = 7;
const FULL = 1;
const FIRST = 2;
const MIDDLE = 3;
const LAST = 4;

/** Bytes at the end of the log that LevelDB will drop as a torn record (0 if none). */
export async function tornLogTail(path: string): Promise<number> {
  const buf = await readFile(path).catch(() => undefined);
  if (buf === undefined) return 0;
  let pos = 0;
  let fragmentStart = -1;
  while (pos < buf.length) {
    const left = BLOCK - (pos % BLOCK);
    if (left < HEADER) {
      pos += left; // block trailer, zero-filled
      continue;
    }
    if (pos + HEADER > buf.length) return buf.length - (fragmentStart >= 0 ? fragmentStart : pos);
    const length = buf.readUInt16LE(pos + 4);
    const type = buf[pos + 6];
    if (pos + HEADER + length > buf.length) return buf.length - (fragmentStart >= 0 ? fragmentStart : pos);
    if (type === FULL) fragmentStart = -1;
    else if (type === FIRST) fragmentStart = pos;
    else if (type === LAST) fragmentStart = -1;
    else if (type !== MIDDLE) return 0; // not a record this reader knows: leave it to LevelDB
    pos += HEADER + length;
  }
  return fragmentStart >= 0 ? buf.length - fragmentStart : 0;
}
