#!/usr/bin/env node
// The floor for any Node CLI that publishes: connect to the daemon socket,
// do the hello, send the same publish request `discue publish q --data x`
// sends, print the id, exit. No argument parsing, no validation, no library.
// Usage: DISCUE_HOME=... node test/bench/minimal-publish.mjs [queue] [data]
import { createConnection } from 'node:net';

const socketPath = `${process.env.DISCUE_HOME}/run/discue.sock`;
const queue = process.argv[2] ?? 'q';
const data = process.argv[3] ?? 'x';

const socket = createConnection(socketPath);
let buffer = '';
socket.setEncoding('utf8');
socket.on('connect', () => {
  socket.write(JSON.stringify({ id: 1, type: 'hello', params: { protocol: 1, version: '0.1.0' } }) + '\n');
});
socket.on('data', (chunk) => {
  buffer += chunk;
  let nl;
  while ((nl = buffer.indexOf('\n')) !== -1) {
    const reply = JSON.parse(buffer.slice(0, nl));
    buffer = buffer.slice(nl + 1);
    if (!reply.ok) {
      process.stderr.write(`error: ${reply.error.message}\n`);
      process.exitCode = 1;
      socket.end();
    } else if (reply.id === 1) {
      socket.write(JSON.stringify({ id: 2, type: 'publish', params: { queue, messages: [{ data }] } }) + '\n');
    } else {
      process.stdout.write(reply.result.ids[0] + '\n');
      socket.end();
    }
  }
});
socket.on('error', (err) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exitCode = 3;
});
