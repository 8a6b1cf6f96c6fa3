/**
 * Command delivery: runs the listener's command once per message, without a
 * shell unless the listener asked for one. The message data arrives on
 * stdin, verbatim; metadata in DISCUE_* variables. Message content never
 * reaches the command line. The command runs in its own process group so
 * that a timeout kills the whole tree, not just the first process.
 *
 * The daemon's commands run in the spawner process (spawner.ts), so that
 * forking them does not stop the daemon's thread; the foreground
 * `listen --exec` runs its command itself (run-command.ts).
 */
import type { Writable } from 'node:stream';
import type { Envelope } from '../protocol/wire.js';
import type { ListenerRecord } from '../backend/types.js';
import { runCommand } from './run-command.js';
import type { CommandOutcome, CommandSpec } from './run-command.js';
import { Spawner, SpawnerDied } from './spawner.js';
import { tail } from './types.js';
import type { SendResult, Sender } from './types.js';

/**
 * Linux refuses to exec with any single environment string over 128 KiB
 * (MAX_ARG_STRLEN, E2BIG), and data may be up to 256 KiB. Above this size
 * DISCUE_MESSAGE carries the envelope without `data`, which is on stdin anyway.
 */
export const MAX_ENV_MESSAGE_BYTES = 96 * 1024;
/**
 * Runs of one attempt whose spawner died under them before the attempt
 * counts as failed. A spawner killed from outside (OOM killer, a stray
 * kill) is not the receiver's fault: the command is run again on a fresh
 * spawner, as the same attempt. A command that kills its own runner every
 * time is, and must not loop for ever.
 */
const SPAWNER_RUNS = 3;
/**
 * DISCUE_SPAWNER=inline makes the daemon spawn on its own thread, one spawn
 * per event-loop iteration: how it worked before the spawner process. Only
 * the benchmark sets it, to measure both ways in one run.
 */
const DAEMON_INLINE = process.env.DISCUE_SPAWNER === 'inline';

/** One spawner for every command listener of the daemon, forked on the first command delivery. */
let spawner: Spawner | undefined;

export interface CommandSenderOptions {
  /** Run the command in this process (the foreground `listen --exec`), not in the spawner. */
  inline?: boolean;
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
    const [file, ...args] = shell ? [command.join(' ')] : command;
    const spec: CommandSpec = {
      file: file!,
      args,
      shell: shell === true,
      env: {
        DISCUE_MESSAGE_ID: message.id,
        DISCUE_QUEUE: message.queue,
        DISCUE_NAME: message.name ?? '',
        DISCUE_PUBLISHED_AT: message.publishedAt,
        DISCUE_ATTEMPT: String(attempt),
        DISCUE_LISTENER: name ?? id,
        DISCUE_MESSAGE: envMessage(message),
      },
      input: message.data,
      timeoutMs,
    };
    if (cwd !== undefined) spec.cwd = cwd;
    if (this.options.inline || DAEMON_INLINE) {
      await spawnTurn();
      if (signal.aborted) return { ok: false, error: 'stopped by the daemon' };
      return resultOf(await this.runHere(spec, signal));
    }
    for (let runs = 1; ; runs++) {
      if (signal.aborted) return { ok: false, error: 'stopped by the daemon' };
      try {
        return resultOf(await (spawner ??= new Spawner()).run(spec, signal));
      } catch (err) {
        if (!(err instanceof SpawnerDied)) throw err;
        if (runs >= SPAWNER_RUNS) return { ok: false, error: `${err.message}; it died ${runs} times while running this attempt` };
      }
    }
  }

  private runHere(spec: CommandSpec, signal: AbortSignal): Promise<CommandOutcome> {
    const { stdout, stderr } = this.options;
    const running = runCommand(spec, { onOutput: (stream, chunk) => (stream === 'stdout' ? stdout : stderr)?.write(chunk) });
    const onAbort = () => running.kill('stopped by the daemon');
    signal.addEventListener('abort', onAbort, { once: true });
    return running.done.finally(() => signal.removeEventListener('abort', onAbort));
  }
}

function resultOf(outcome: CommandOutcome): SendResult {
  const output = tail(outcome.output);
  if (outcome.killedBy) return { ok: false, error: outcome.killedBy, signal: 'SIGKILL', output };
  if (outcome.error) return { ok: false, error: outcome.error, output };
  if (outcome.exitCode === 0) return { ok: true, exitCode: 0, output };
  if (outcome.exitCode !== undefined) return { ok: false, exitCode: outcome.exitCode, error: `exit code ${outcome.exitCode}`, output };
  if (outcome.signal) return { ok: false, signal: outcome.signal, error: `killed by ${outcome.signal}`, output };
  return { ok: false, error: 'the command ended without an exit code', output };
}

/**
 * Spawning on this thread blocks it for a few milliseconds (fork + exec
 * happen synchronously). Several commands finishing in the same turn would
 * spawn back to back and starve everything else of the process; so inline
 * spawns take turns, at most one per event-loop iteration.
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
