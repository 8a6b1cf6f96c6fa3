// HTTP sink for the mix benchmark (mix.ts), in its own process (child_process.fork).
// Every request's lag is its receive time minus the envelope's publishedAt.
// IPC in:  {cmd:'take'} -> {type:'taken', count, lags: [ms, ...]} (since the last take; then cleared)
// Out at start: {type:'listening', port}
import { createServer } from 'node:http';

let count = 0;
let lags = [];

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const at = Date.now();
    res.writeHead(200, { 'content-length': '0' });
    res.end();
    count++;
    try {
      lags.push(at - Date.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')).publishedAt));
    } catch {
      // not an envelope: counted, no lag
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }));

process.on('message', (m) => {
  if (m.cmd === 'take') {
    process.send({ type: 'taken', count, lags });
    count = 0;
    lags = [];
  }
});
process.on('disconnect', () => process.exit(0));
