// The loop the bench's floor servers share (minimal-server, nats-relay,
// start-floor): NDJSON over a Unix socket, each request line parsed and
// handed to `onRequest(request, reply)`; reply(value) writes one line back.
// No checks: these are floors, not servers.
import { createServer } from 'node:net';

export function serveNdjson(socketPath, onRequest, onListening) {
  return createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    const reply = (value) => socket.write(JSON.stringify(value) + '\n');
    socket.on('data', (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
        const request = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        onRequest(request, reply);
      }
    });
  }).listen(socketPath, onListening);
}
