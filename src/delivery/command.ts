/**
 * Command delivery: runs the listener's command once per message, without a
 * shell unless the listener asked for one. The message data arrives on
 * stdin, verbatim; metadata in DISCUE_* variables. Message content never
 * reaches the command line. The command runs in its own process group so
 * that a timeout kills the whole tree, not just the first process.
 */
import { execa } from 'execa';
import type { Envelope } from '../protocol/messages.js';
import type { ListenerRecord } from '../store/deliveries.js';
import { tail } from './types.js';
import type { SendResult, Sender } from './types.js';

const MAX_OUTPUT = 1024 * 1024;

export class CommandSender implements Sender {
  constructor(private readonly listener: ListenerRecord) {}

  async send(message: Envelope, attempt: number, signal: AbortSignal): Promise<SendResult> {
    const { command = [], shell, cwd, timeoutMs, id, name } = this.listener;
    const env: Record<string, string> = {
      DISCUE_MESSAGE_ID: message.id,
      DISCUE_QUEUE: message.queue,
      DISCUE_NAME: message.name ?? '',
      DISCUE_PUBLISHED_AT: message.publishedAt,
      DISCUE_ATTEMPT: String(attempt),
      DISCUE_LISTENER: name ?? id,
      DISCUE_MESSAGE: JSON.stringify(message),
    };
    const [file, ...args] = shell ? [command.join(' ')] : command;
    const child = execa(file!, args, {
      input: message.data,
      env,
      extendEnv: true,
      cwd,
      shell: shell === true,
      detached: true,
      reject: false,
      all: true,
      stripFinalNewline: false,
      maxBuffer: MAX_OUTPUT,
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
      const output = tail(typeof result.all === 'string' ? result.all : '');
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
