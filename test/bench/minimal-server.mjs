#!/usr/bin/env node
// The floor for "1 in flight" (issue 14): NDJSON over a Unix socket, one
// synced LevelDB put per publish, no checks, no ids worth the name. Run as
// its own process, like the daemon. Usage: node minimal-server.mjs SOCKET DBDIR
import { createServer } from 'node:net';
import { ClassicLevel } from 'classic-level';

const [socketPath, dbDir] = process.argv.slice(2);
const db = new ClassicLevel(dbDir, { valueEncoding: 'utf8' });
await db.open();
let seq = 0;
createServer((socket) => {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    buffer += chunk;
    for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
      const { id, type, params } = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      if (type !== 'publish') socket.write(JSON.stringify({ id, ok: true, result: {} }) + '\n');
      else {
        const key = String(++seq).padStart(16, '0');
        db.put(key, JSON.stringify(params.messages[0]), { sync: true }).then(() => socket.write(JSON.stringify({ id, ok: true, result: { ids: [key] } }) + '\n'));
      }
    }
  });
}).listen(socketPath, () => process.stdout.write('listening\n'));
