/**
 * A minimal NDJSON client for the daemon socket, with none of the library
 * client's checks: the floor the library client is compared against, and a
 * probe that asks "does the socket answer a hello yet?" during start-up.
 */
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';

interface Reply {
  id: number;
  ok?: boolean;
  result?: unknown;
  error?: { code: string; message: string };
}

export class RawClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.failAll(err));
    socket.on('close', () => this.failAll(new Error('socket closed')));
  }

  static async connect(path: string): Promise<RawClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection(path);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
    const client = new RawClient(socket);
    try {
      await client.request('hello', { protocol: 1, version: '0.1.0' });
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return client;
  }

  request(type: string, params: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(JSON.stringify({ id, type, params }) + '\n');
    });
  }

  publish(queue: string, messages: { data: string }[]): Promise<unknown> {
    return this.request('publish', { queue, messages });
  }

  close(): void {
    this.socket.end();
  }

  private onData(chunk: string): void {
    const text = this.buffer + chunk;
    let start = 0;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      const line = text.slice(start, nl);
      start = nl + 1;
      nl = text.indexOf('\n', start);
      const reply = JSON.parse(line) as Reply;
      const waiter = this.pending.get(reply.id);
      if (!waiter) continue;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`${reply.error?.code ?? 'ERROR'}: ${reply.error?.message ?? line}`));
    }
    this.buffer = text.slice(start);
  }

  private failAll(err: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(err);
    this.pending.clear();
  }
}

/** True once something on `path` answers a discue hello. */
export async function answersHello(path: string): Promise<boolean> {
  try {
    const client = await RawClient.connect(path);
    client.close();
    return true;
  } catch {
    return false;
  }
}
