#!/usr/bin/env node
// The floor for an HTTP publish endpoint in Node: node:http, the body read
// and parsed as JSON, the message stored with a synced, chained LevelDB
// batch with group commit (writes that arrive while one batch is on disk go
// in the next one), as discue writes, the id answered. No routing, no
// validation, no tokens. Forked by http.ts; reports its port over IPC.
// Usage: node http-minimal-server.mjs DATA_DIR
import { createServer } from 'node:http';
import { ClassicLevel } from 'classic-level';

const db = new ClassicLevel(process.argv[2], { keyEncoding: 'utf8', valueEncoding: 'utf8' });
await db.open();
let n = 0;
let pending = [];
let writing = false;

function flush() {
  if (writing || pending.length === 0) return;
  writing = true;
  const batch = pending;
  pending = [];
  // A chained batch, as discue's group committer writes: the array form
  // re-checks every operation in JS and cost this server ~25% of its thread
  // (CPU profile), which made it a floor discue could beat.
  const chained = db.batch();
  for (const w of batch) chained.put(w.key, w.value);
  chained.write({ sync: true }).then(
    () => {
      writing = false;
      for (const w of batch) w.done();
      flush();
    },
    (err) => {
      writing = false;
      for (const w of batch) w.fail(err);
      flush();
    },
  );
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const id = String(++n).padStart(26, '0');
    const value = JSON.stringify({ id, data: message.data, publishedAt: new Date().toISOString() });
    pending.push({
      key: `m!q!${id}`,
      value,
      done: () => {
        const body = JSON.stringify({ ids: [id] });
        res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
      fail: (err) => {
        res.writeHead(500);
        res.end(String(err));
      },
    });
    flush();
  });
});
server.keepAliveTimeout = 10_000;
server.listen(0, '127.0.0.1', () => process.send?.({ type: 'listening', port: server.address().port }));
process.on('disconnect', () => process.exit(0));
