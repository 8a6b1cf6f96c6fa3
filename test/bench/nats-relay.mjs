#!/usr/bin/env node
// The floor for "1 in flight" on NATS (issue 11): what any design with a
// daemon between the publisher and the cluster pays. NDJSON over a Unix
// socket, one js.publish per request with a Nats-Msg-Id, as the raw client
// does it; no checks, no queue lookup, no id worth the name. Run as its own
// process, like the daemon. Usage: node nats-relay.mjs SOCKET NATS_URL SUBJECT
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { serveNdjson } from './ndjson-server.mjs';

const [socketPath, url, subject] = process.argv.slice(2);
const nc = await connect({ servers: url });
const js = jetstream(nc);
let seq = 0;
const prefix = `relay-${process.pid}-${Date.now()}-`;
serveNdjson(
  socketPath,
  ({ id, data }, reply) => {
    js.publish(subject, data, { msgID: prefix + ++seq }).then(
      (ack) => reply({ id, seq: ack.seq }),
      (err) => reply({ id, error: String(err) }),
    );
  },
  () => process.stdout.write('listening\n'),
);
