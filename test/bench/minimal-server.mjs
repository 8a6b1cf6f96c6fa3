#!/usr/bin/env node
// The floor for "1 in flight" (issue 14): NDJSON over a Unix socket, one
// synced LevelDB put per publish, no checks, no ids worth the name. Run as
// its own process, like the daemon. Usage: node minimal-server.mjs SOCKET DBDIR
import { ClassicLevel } from 'classic-level';
import { serveNdjson } from './ndjson-server.mjs';

const [socketPath, dbDir] = process.argv.slice(2);
const db = new ClassicLevel(dbDir, { valueEncoding: 'utf8' });
await db.open();
let seq = 0;
serveNdjson(
  socketPath,
  ({ id, type, params }, reply) => {
    if (type !== 'publish') reply({ id, ok: true, result: {} });
    else {
      const key = String(++seq).padStart(16, '0');
      db.put(key, JSON.stringify(params.messages[0]), { sync: true }).then(() => reply({ id, ok: true, result: { ids: [key] } }));
    }
  },
  () => process.stdout.write('listening\n'),
);
