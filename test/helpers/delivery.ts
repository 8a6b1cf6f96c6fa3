/**
 * Probes for the delivery tests: a real HTTP receiver on 127.0.0.1 that
 * records every request and answers as the test says, an independent
 * Standard Webhooks verifier (written from the specification, not from
 * src/delivery/signature.ts), shell scripts in the sandbox, and small
 * wrappers for the listener / deliveries commands. Built on the sandbox;
 * changes nothing in it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';
import { waitFor } from './sandbox.js';
import type { RunResult, Sandbox } from './sandbox.js';
import type { Attempt } from '../../src/protocol/wire.js';

export interface Envelope {
  id: string;
  queue: string;
  name?: string;
  data: string;
  publishedAt: string;
}

export interface Received {
  /** When the request arrived (ms since epoch). */
  at: number;
  method: string;
  /** The request path, e.g. /hook/7. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  envelope: Envelope;
}

/** What the receiver does with one request: an answer, or hang (never answer), or drop the connection. */
export type Reply =
  | { status: number; headers?: Record<string, string>; body?: string }
  | 'hang'
  | 'destroy'
  /** Answers by hand (e.g. a body that trickles in); not counted as delivered. */
  | { raw: (res: ServerResponse) => void };
export type Responder = (req: Received, index: number) => Reply | Promise<Reply>;

export interface HookServer {
  readonly url: string;
  readonly port: number;
  /** Every request, in arrival order (including failed ones). */
  readonly requests: Received[];
  /** Requests that were answered 2xx, in order. */
  readonly delivered: Received[];
  respond(responder: Responder): void;
  /** Stops listening and drops every connection (the receiver is down). */
  close(): Promise<void>;
  /** Listens again on the same port (the receiver is back). */
  reopen(): Promise<void>;
}

const servers = new Set<HookServer>();

/** Starts a receiver on 127.0.0.1 (port 0 unless given). By default answers 200 "ok". */
export async function startHookServer(responder: Responder = () => ({ status: 200, body: 'ok' }), port = 0): Promise<HookServer> {
  let current = responder;
  const requests: Received[] = [];
  const delivered: Received[] = [];
  const sockets = new Set<Socket>();
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let envelope: Envelope;
        try {
          envelope = JSON.parse(body) as Envelope;
        } catch {
          envelope = { id: '', queue: '', data: '', publishedAt: '' };
        }
        const received: Received = { at: Date.now(), method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, envelope };
        const index = requests.length;
        requests.push(received);
        let reply: Reply;
        try {
          reply = await current(received, index);
        } catch {
          reply = { status: 500, body: 'responder threw' };
        }
        if (reply === 'hang') return;
        if (reply === 'destroy') {
          req.socket.destroy();
          return;
        }
        if ('raw' in reply) {
          reply.raw(res);
          return;
        }
        if (reply.status >= 200 && reply.status < 300) delivered.push(received);
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      })();
    });
  };
  let server: Server = createServer(handle);
  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      server.listen(p, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const boundPort = await listen(port);
  let open = true;
  const hook: HookServer = {
    url: `http://127.0.0.1:${boundPort}/hook`,
    port: boundPort,
    requests,
    delivered,
    respond(r) {
      current = r;
    },
    async close() {
      if (!open) return;
      open = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await closed;
      servers.delete(hook);
    },
    async reopen() {
      if (open) return;
      server = createServer(handle);
      await listen(boundPort);
      open = true;
      servers.add(hook);
    },
  };
  servers.add(hook);
  return hook;
}

/** Closes every receiver still open (for afterEach). */
export async function closeAllServers(): Promise<void> {
  await Promise.allSettled([...servers].map((s) => s.close()));
}

// ---- Standard Webhooks, from https://www.standardwebhooks.com ------------

/**
 * Verifies a request the way a receiver's library would: the key is the
 * base64 after `whsec_`, the signed content is `${id}.${timestamp}.${body}`,
 * the header is a space-separated list of `v1,<base64 HMAC-SHA256>`, and the
 * timestamp must be within the tolerance of now.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): boolean {
  const id = single(headers['webhook-id']);
  const timestamp = single(headers['webhook-timestamp']);
  const signatures = single(headers['webhook-signature']);
  if (!id || !timestamp || !signatures) return false;
  if (!/^\d+$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) return false;
  const expected = standardSignature(secret, id, timestamp, body);
  return signatures.split(' ').some((candidate) => {
    const [version, value] = candidate.split(',', 2);
    if (version !== 'v1' || value === undefined) return false;
    const a = Buffer.from(value, 'base64');
    const b = Buffer.from(expected, 'base64');
    return a.length === b.length && timingSafeEqual(a, b);
  });
}

/** The base64 signature (without the `v1,`) a Standard Webhooks sender puts in the header. */
export function standardSignature(secret: string, id: string, timestamp: string | number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
  return createHmac('sha256', key).update(`${id}.${String(timestamp)}.${body}`, 'utf8').digest('base64');
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

// ---- CLI wrappers ----------------------------------------------------------

export interface ListenerJson {
  id: string;
  name?: string;
  kind: string;
  queues: string[];
  state: 'active' | 'paused' | 'disabled';
  disabledReason?: string;
  secret?: string;
  hasSecret?: boolean;
  command?: string[];
  progress?: { queue: string; cursor?: string; delivered: number; dead: number; failedAttempts: number; inFlight: number }[];
}

/** An attempt as `--json` prints it: the wire's own shape. */
export type AttemptJson = Attempt;

export interface DeliveryJson {
  id: string;
  listenerId: string;
  listenerName?: string;
  queue: string;
  messageId: string;
  state: 'pending' | 'failed' | 'dead' | 'delivered';
  attempts: AttemptJson[];
  nextAttemptAt?: string;
  updatedAt: string;
}

function where(args: string[], result: RunResult): string {
  return `discue ${args.join(' ')}\nexit ${String(result.code)}\nstderr: ${result.stderr}\nstdout: ${result.stdout}`;
}

/** Runs a command that must succeed with --json and returns the parsed document. */
export async function runJson<T>(sb: Sandbox, args: string[], input?: string): Promise<T> {
  const full = [...args, '--json'];
  const result = await sb.run(full, input === undefined ? {} : { input });
  expect(result.code, where(full, result)).toBe(0);
  return JSON.parse(result.stdout) as T;
}

export async function mustRun(sb: Sandbox, args: string[], options: { input?: string; cwd?: string } = {}): Promise<string> {
  const result = await sb.run(args, options);
  expect(result.code, where(args, result)).toBe(0);
  return result.stdout;
}

export function addListener(sb: Sandbox, args: string[], cwd?: string): Promise<ListenerJson> {
  return (async () => {
    const full = ['listener', 'add', ...args, '--json'];
    const result = await sb.run(full, cwd === undefined ? {} : { cwd });
    expect(result.code, where(full, result)).toBe(0);
    return JSON.parse(result.stdout) as ListenerJson;
  })();
}

export function showListener(sb: Sandbox, ref: string, secret = false): Promise<ListenerJson> {
  return runJson<ListenerJson>(sb, ['listener', 'show', ref, ...(secret ? ['--secret'] : [])]);
}

export function listDeliveries(sb: Sandbox, args: string[] = []): Promise<DeliveryJson[]> {
  return runJson<DeliveryJson[]>(sb, ['deliveries', 'list', ...args]);
}

/** Publishes each data string as one message (one NDJSON batch); returns the ids in order. */
export async function publishData(sb: Sandbox, queue: string, data: string[], name?: string): Promise<string[]> {
  const input = data.map((d) => JSON.stringify(name === undefined ? { data: d } : { data: d, name })).join('\n') + '\n';
  const out = await mustRun(sb, ['publish', queue], { input });
  const ids = out.trim().split('\n');
  expect(ids).toHaveLength(data.length);
  return ids;
}

export function range(n: number, prefix = 'm'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

// ---- scripts -------------------------------------------------------------

/** Writes an executable /bin/sh script into the sandbox and returns its path. */
export function writeScript(sb: Sandbox, name: string, body: string): string {
  const path = join(sb.dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Lines of a file (empty when it does not exist yet). */
export function lines(path: string): string[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/** SIGKILLs processes a test left running on purpose (background children, a stopped spawner) and empties the list. */
export function killLeftovers(pids: number[]): void {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as it should be
    }
  }
}
