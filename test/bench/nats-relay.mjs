#!/usr/bin/env node
// The floor for "1 in flight" on NATS (issue 11): what any design with a
// daemon between the publisher and the cluster pays. NDJSON over a Unix
// socket, one js.publish per request with a Nats-Msg-Id, as the raw client
// does it; no checks, no queue lookup, no id worth the name. Run as its own
// process, like the daemon. Usage: node nats-relay.mjs SOCKET NATS_URL SUBJECT
import { createServer } from 'node:net';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const [socketPath, url, subject] = process.argv.slice(2);
const nc = await connect({ servers: url });
const js = jetstream(nc);
let seq = 0;
const prefix = `relay-${process.pid}-${Date.now()}-`;
createServer((socket) => {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    buffer += chunk;
    for (let nl = buffer.indexOf('\n'); nl !== -1; nl = buffer.indexOf('\n')) {
      const { id, data } = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      js.publish(subject, data, { msgID: prefix + ++seq }).then(
        (ack) => socket.write(JSON.stringify({ id, seq: ack.seq }) + '\n'),
        (err) => socket.write(JSON.stringify({ id, error: String(err) }) + '\n'),
      );
    }
  });
}).listen(socketPath, () => process.stdout.write('listening\n'));
