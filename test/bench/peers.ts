/**
 * Peers in the same run (issue 14): Redis XADD with appendfsync always from
 * 50 clients, and NATS JetStream publish with 256 in flight, each when its
 * server is installed (`command -v`), else a printed note. Servers listen on
 * free 127.0.0.1 ports, keep their data in the run's temp directory and are
 * stopped by pid. The NATS client is the text protocol spoken directly
 * (PUB with a reply inbox; the JetStream ack comes back on it): no npm package.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Measured, SectionContext } from './lib.js';
import { Samples, log, sleep } from './lib.js';

export function installed(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function connectTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      (await connectTcp(port)).destroy();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

/** nats-server with JetStream on a free port; stopped by pid at the end of the run. */
async function startNats(ctx: SectionContext): Promise<number> {
  const port = await freePort();
  const dir = join(ctx.root, 'nats');
  mkdirSync(dir);
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  const pid = child.pid;
  const kill = () => {
    if (pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
  };
  ctx.cleanup.add(kill, kill);
  await waitForPort(port, 10_000);
  return port;
}

/** One NATS connection: publishes with a reply inbox, resolved by the JetStream ack. */
class NatsPublisher {
  private buffer: Buffer = Buffer.alloc(0);
  private next = 0;
  private readonly waiting = new Map<string, (ack: string) => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  static async connect(port: number): Promise<NatsPublisher> {
    const socket = await connectTcp(port);
    const client = new NatsPublisher(socket);
    socket.write('CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.bench.* 1\r\n');
    return client;
  }

  request(subject: string, payload: string): Promise<string> {
    const inbox = `_INBOX.bench.${++this.next}`;
    return new Promise((resolve) => {
      this.waiting.set(inbox, resolve);
      this.socket.write(`PUB ${subject} ${inbox} ${Buffer.byteLength(payload)}\r\n${payload}\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const eol = this.buffer.indexOf('\r\n');
      if (eol === -1) return;
      const line = this.buffer.toString('latin1', 0, eol);
      if (line.startsWith('MSG ')) {
        // MSG <subject> <sid> [reply] <bytes>
        const parts = line.split(' ');
        const bytes = Number(parts[parts.length - 1]);
        if (this.buffer.length < eol + 2 + bytes + 2) return;
        const payload = this.buffer.toString('utf8', eol + 2, eol + 2 + bytes);
        this.buffer = this.buffer.subarray(eol + 2 + bytes + 2);
        const resolve = this.waiting.get(parts[1]!);
        this.waiting.delete(parts[1]!);
        resolve?.(payload);
        continue;
      }
      this.buffer = this.buffer.subarray(eol + 2);
      if (line === 'PING') this.socket.write('PONG\r\n');
      else if (line.startsWith('-ERR')) log(`nats: ${line}`);
    }
  }
}

/** JetStream publish, `inFlight` at once on one connection, closed loop: each slot publishes again on its ack. */
export async function natsJetStream(ctx: SectionContext, inFlight: number, warmupMs: number, durationMs: number): Promise<Measured> {
  const port = await startNats(ctx);
  const client = await NatsPublisher.connect(port);
  try {
    const created = await client.request('$JS.API.STREAM.CREATE.bench', JSON.stringify({ name: 'bench', subjects: ['bench'], storage: 'file' }));
    if (created.includes('"error"')) throw new Error(`nats stream create: ${created}`);
    const latencies = new Samples();
    let counted = 0;
    const start = performance.now();
    const windowStart = start + warmupMs;
    const end = windowStart + durationMs;
    let sent = 0;
    const slot = async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const ack = await client.request('bench', ctx.payloads[sent++ % ctx.payloads.length]!);
        if (!ack.includes('"seq"')) throw new Error(`nats publish: ${ack}`);
        const done = performance.now();
        if (t >= windowStart && done <= end) {
          counted++;
          latencies.push(done - t);
        }
      }
    };
    await Promise.all(Array.from({ length: inFlight }, slot));
    return { rate: counted / (durationMs / 1000), messages: counted, seconds: durationMs / 1000, latencies: latencies.values() };
  } finally {
    client.close();
  }
}
