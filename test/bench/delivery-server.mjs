// HTTP sink for the delivery benchmark, run in its own process (child_process.fork)
// so it does not share an event loop with the client or the daemon.
// IPC in:  {cmd:'expect', target} -> {type:'done', count, atMs} once `target` requests arrived in all
//          {cmd:'count'}      -> {type:'count', count}
//          {cmd:'record', on} -> start/stop keeping webhook-id -> receive time (wall ms)
//          {cmd:'times'}      -> {type:'times', times: [[id, ms], ...]} (and clears them)
// Out at start: {type:'listening', port}
import { createServer } from 'node:http';

let count = 0;
let target = Infinity;
let recording = false;
let times = new Map();
const now = () => performance.timeOrigin + performance.now();

const server = createServer((req, res) => {
  const at = now();
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, { 'content-length': '0' });
    res.end();
    count++;
    if (recording) {
      const id = req.headers['webhook-id'];
      // The first arrival: a redelivery (after a retry or a failover) is not when it was received.
      if (typeof id === 'string' && !times.has(id)) times.set(id, at);
    }
    if (count >= target) {
      target = Infinity;
      process.send({ type: 'done', count, atMs: now() });
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));

process.on('message', (m) => {
  if (m.cmd === 'expect') {
    target = m.target;
    if (count >= target) {
      target = Infinity;
      process.send({ type: 'done', count, atMs: now() });
    }
  } else if (m.cmd === 'count') process.send({ type: 'count', count });
  else if (m.cmd === 'record') recording = m.on;
  else if (m.cmd === 'times') {
    process.send({ type: 'times', times: [...times] });
    times = new Map();
  }
});
process.on('disconnect', () => process.exit(0));
