/**
 * Assertions and probes shared by the end-to-end tests: error output of the
 * CLI, what is stored, which daemon processes run for a home, and raw socket
 * connections for protocol abuse. Built on the sandbox; changes nothing in it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { expect } from 'vitest';
import type { RunResult, Sandbox } from './sandbox.js';
import { waitFor } from './sandbox.js';

export interface StoredMessage {
  id: string;
  queue: string;
  name?: string;
  data: string;
  publishedAt: string;
}

/** Asserts a failed run: its exit code, and the stable code as the `[CODE]` suffix on stderr. Nothing on stdout. */
export function expectError(result: RunResult, exit: number, code: string): void {
  const where = `stderr: ${result.stderr}\nstdout: ${result.stdout}`;
  expect(result.code, where).toBe(exit);
  expect(result.stderr, where).toContain(`[${code}]`);
  expect(result.stdout, where).toBe('');
}

/** Asserts a failed run under --json: stderr is `{"error":{"code":...}}`. Returns the error. */
export function expectJsonError(
  result: RunResult,
  exit: number,
  code: string,
): { code: string; message: string; details?: unknown } {
  const where = `stderr: ${result.stderr}\nstdout: ${result.stdout}`;
  expect(result.code, where).toBe(exit);
  const lines = result.stderr.trim().split('\n');
  const parsed = JSON.parse(lines[lines.length - 1]!) as { error: { code: string; message: string; details?: unknown } };
  expect(parsed.error.code, where).toBe(code);
  expect(typeof parsed.error.message).toBe('string');
  return parsed.error;
}

/** Runs a command that must succeed and returns its stdout. */
export async function ok(sb: Sandbox, args: string[], input?: string): Promise<string> {
  const result = await sb.run(args, input === undefined ? {} : { input });
  expect(result.code, `discue ${args.join(' ')}\nstderr: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** Every message of a queue, oldest first, read through the CLI page by page. */
export async function listAll(sb: Sandbox, queue: string): Promise<StoredMessage[]> {
  const all: StoredMessage[] = [];
  for (;;) {
    const args = ['messages', 'list', queue, '--json', '--limit', '10000'];
    if (all.length > 0) args.push('--since', all[all.length - 1]!.id);
    const page = JSON.parse(await ok(sb, args)) as StoredMessage[];
    all.push(...page);
    if (page.length < 10_000) return all;
  }
}

export async function messageCount(sb: Sandbox, queue: string): Promise<number> {
  const info = JSON.parse(await ok(sb, ['queue', 'show', queue, '--json'])) as { messages: number };
  return info.messages;
}

/** Pids of daemon processes (`discue daemon start --foreground`) serving this home, found through /proc. */
export function daemonProcesses(home: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!(cmdline.includes('daemon') && cmdline.includes('start') && cmdline.includes('--foreground'))) continue;
      const environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
      // A zombie has an empty environ; it no longer serves anything.
      if (environ.split('\0').includes(`DISCUE_HOME=${home}`) && !isZombie(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** True while a process exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !isZombie(pid);
}

export async function waitForExit(pid: number, what = `process ${pid} to exit`): Promise<void> {
  await waitFor(() => !isRunning(pid), 20_000, what);
}

/** The running daemon's pid as `daemon status --json` reports it. */
export async function statusPid(sb: Sandbox): Promise<number> {
  const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { running: boolean; pid: number };
  expect(status.running).toBe(true);
  return status.pid;
}

/** A raw connection to a socket: what arrived, as lines, and whether it was closed. */
export class RawClient {
  readonly socket: Socket;
  private text = '';
  closed = false;
  error: NodeJS.ErrnoException | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (this.text += d));
    socket.on('error', (err) => (this.error = err));
    socket.on('close', () => (this.closed = true));
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Connects and completes the handshake. */
  static async greeted(path: string): Promise<RawClient> {
    const client = await RawClient.connect(path);
    client.send({ id: 1, type: 'hello', params: { protocol: 1, version: 'test' } });
    const hello = await client.frame(1);
    expect(hello.ok).toBe(true);
    return client;
  }

  send(frame: unknown): void {
    this.socket.write(JSON.stringify(frame) + '\n');
  }

  get frames(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Waits for the reply (or error frame) with this id. */
  async frame(id: number): Promise<Record<string, unknown>> {
    const frame = await waitFor(() => this.frames.find((f) => f.id === id), 20_000, `frame ${id}`);
    return frame!;
  }

  async waitClosed(): Promise<void> {
    await waitFor(() => this.closed, 20_000, 'the daemon to close the connection');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** NDJSON of messages with the given data. */
export function ndjson(datas: string[]): string {
  return datas.map((data) => JSON.stringify({ data }) + '\n').join('');
}
