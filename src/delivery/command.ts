/**
 * Command delivery: runs the listener's command once per message, without a
 * shell unless the listener asked for one. The message data arrives on
 * stdin, verbatim; metadata in DISCUE_* variables. Message content never
 * reaches the command line. The command runs in its own process group so
 * that a timeout kills the whole tree, not just the first process.
 */
import type { Writable } from 'node:stream';
type Execa = typeof import('execa');
/** execa (a few hundred modules) is loaded on the first command delivery, not at daemon start. */
let execaModule: Promise<Execa> | undefined;
import type { Envelope } from '../protocol/messages.js';
import type { ListenerRecord } from '../store/deliveries.js';
import { tail } from './types.js';
import type { SendResult, Sender } from './types.js';

/** Output kept per attempt, from the end; the rest is read and dropped. */
const OUTPUT_TAIL_BYTES = 4096;
/**
 * Linux refuses to exec with any single environment string over 128 KiB
 * (MAX_ARG_STRLEN, E2BIG), and data may be up to 256 KiB. Above this size
 * DISCUE_MESSAGE carries the envelope without `data`, which is on stdin anyway.
 */
export const MAX_ENV_MESSAGE_BYTES = 96 * 1024;

export interface CommandSenderOptions {
  /** Also write the command's stdout / stderr here as it comes (foreground `listen --exec`). */
  stdout?: Writable;
  stderr?: Writable;
}

export class CommandSender implements Sender {
  constructor(
    private readonly listener: ListenerRecord,
    private readonly options: CommandSenderOptions = {},
  ) {}

  async send(message: Envelope, attempt: number, signal: AbortSignal): Promise<SendResult> {
    const { command = [], shell, cwd, timeoutMs, id, name } = this.listener;
    const env: Record<string, string> = {
      DISCUE_MESSAGE_ID: message.id,
      DISCUE_QUEUE: message.queue,
      DISCUE_NAME: message.name ?? '',
      DISCUE_PUBLISHED_AT: message.publishedAt,
      DISCUE_ATTEMPT: String(attempt),
      DISCUE_LISTENER: name ?? id,
      DISCUE_MESSAGE: envMessage(message),
    };
    const [file, ...args] = shell ? [command.join(' ')] : command;
    await spawnTurn();
    if (signal.aborted) return { ok: false, error: 'stopped by the daemon' };
    // Not buffered by execa: a command that prints megabytes would be killed at
    // maxBuffer and its delivery failed although it exited 0. We keep a tail.
    const { execa } = await (execaModule ??= import('execa'));
    const child = execa(file!, args, {
      input: message.data,
      env,
      extendEnv: true,
      cwd,
      shell: shell === true,
      detached: true,
      reject: false,
      buffer: false,
    });
    const collected = new TailBuffer(OUTPUT_TAIL_BYTES);
    child.stdout?.on('data', (chunk: Buffer) => {
      collected.push(chunk);
      this.options.stdout?.write(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      collected.push(chunk);
      this.options.stderr?.write(chunk);
    });
    let killedBy: string | undefined;
    const killTree = (why: string) => {
      if (killedBy) return;
      killedBy = why;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
    };
    const timer = setTimeout(() => killTree(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => killTree('stopped by the daemon');
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await child;
      const output = tail(collected.text());
      if (killedBy) {
        // The leader may be gone already; take the rest of its group with it.
        return { ok: false, error: killedBy, signal: 'SIGKILL', output };
      }
      if (result.exitCode === 0) return { ok: true, exitCode: 0, output };
      const out: SendResult = { ok: false, output };
      if (result.exitCode !== undefined) {
        out.exitCode = result.exitCode;
        out.error = `exit code ${result.exitCode}`;
      } else if (result.signal) {
        out.signal = result.signal;
        out.error = `killed by ${result.signal}`;
      } else {
        out.error = result.shortMessage ?? result.message ?? 'command failed';
      }
      return out;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (killedBy && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // group already gone
        }
      }
    }
  }
}

/**
 * Spawning blocks the event loop for a few milliseconds (fork + exec happen
 * synchronously). Several command listeners finishing in the same turn
 * would spawn back to back and starve every HTTP listener of the daemon; so
 * spawns take turns, at most one per event-loop iteration, with the I/O of
 * the others in between.
 */
let spawnQueue: Promise<void> = Promise.resolve();
function spawnTurn(): Promise<void> {
  const turn = spawnQueue.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  spawnQueue = turn;
  return turn;
}

function envMessage(message: Envelope): string {
  const json = JSON.stringify(message);
  if (Buffer.byteLength(json, 'utf8') <= MAX_ENV_MESSAGE_BYTES) return json;
  const { data: _data, ...rest } = message;
  return JSON.stringify(rest);
}

/** The last `max` bytes written to it. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.max) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    const text = all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
    // A cut in the middle of a UTF-8 sequence shows as U+FFFD at the start: drop it.
    return all.length > this.max ? text.replace(/^\uFFFD+/, '') : text;
  }
}
