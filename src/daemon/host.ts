/**
 * This host's id: which daemon runs a command listener on a store several
 * daemons share (NATS). Made once per DISCUE_HOME and kept in
 * $DISCUE_HOME/host-id, so a restart is the same host; two homes on one
 * machine are two hosts (as the tests use them). The machine's name leads,
 * for people reading `listener list`; the random tail keeps two machines of
 * one name apart.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

const HOST_ID_RE = /^[A-Za-z0-9._-]{1,80}$/;

export async function hostIdOf(home: string): Promise<string> {
  const file = join(home, 'host-id');
  const known = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (HOST_ID_RE.test(known)) return known;
  const name = hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40) || 'host';
  const id = `${name}-${randomBytes(4).toString('hex')}`;
  await writeFile(file, `${id}\n`, { mode: 0o600 });
  return id;
}
