#!/usr/bin/env node
// The floor for "daemon start" (issue 14): what `discue daemon start` does
// with none of discue's work. A starter process (Node start-up, as the CLI)
// spawns a detached server process (Node start-up again, as the daemon),
// which listens on a Unix socket and answers every NDJSON line with ok; with
// DBDIR it first opens an empty LevelDB there (classic-level loaded and
// opened, as the daemon does). The starter exits once it has spawned.
//   node start-floor.mjs SOCKET [DBDIR]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { serveNdjson } from './ndjson-server.mjs';

const [mode, ...rest] = process.argv.slice(2);
if (mode === '--serve') {
  const [socketPath, dbDir] = rest;
  if (dbDir) {
    const { ClassicLevel } = await import('classic-level');
    await new ClassicLevel(dbDir, { valueEncoding: 'utf8' }).open();
  }
  // Its pid beside the socket, for whoever stops it (it is detached).
  writeFileSync(`${socketPath}.pid`, String(process.pid));
  serveNdjson(socketPath, ({ id }, reply) => reply({ id, ok: true, result: {} }));
} else {
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve', mode, ...rest], { detached: true, stdio: 'ignore' });
  child.unref();
}
