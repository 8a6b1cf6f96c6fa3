/**
 * The daemon's side of the spawner process (spawner-process.ts).
 *
 * Spawning a command from the daemon forks the daemon: the kernel copies its
 * page tables, on the daemon's only thread, for about 13 ms with a daemon of
 * a few hundred MB, during which no client and no HTTP listener is served.
 * With two busy command listeners that was most of the thread. Here the
 * daemon only sends the command (JSON over Node's IPC pipe) to a small
 * long-lived process that forks instead, and gets the outcome back: a few
 * tens of microseconds of the daemon's thread per command.
 *
 * The spawner is forked once, on the first command delivery. If it dies
 * (killed, crashed), the commands it was running are killed by group from
 * here and their runs fail with SpawnerDied; the next run forks a new one.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CommandOutcome, CommandSpec } from './run-command.js';

export type SpawnerRequest = { t: 'run'; id: number; spec: CommandSpec } | { t: 'kill'; id: number; why: string };
export type SpawnerReply = { t: 'started'; id: number; pid: number | undefined } | { t: 'done'; id: number; outcome: CommandOutcome };

const ENTRY = fileURLToPath(new URL('./spawner-process.js', import.meta.url));

/**
 * How long after a command's deadline (or a stop) the spawner must have
 * reported its outcome: it kills the group at the deadline and reports
 * within 2 s even if the leader never exits (run-command.ts), plus room for
 * a busy machine.
 */
const SPAWNER_ANSWER_MS = 10_000;

/** The spawner went away while it was running this command: not the command's outcome. */
export class SpawnerDied extends Error {
  constructor(readonly spawnerPid: number | undefined, how: string) {
    super(`the command runner (spawner process ${spawnerPid ?? '?'}) ${how}`);
  }
}

interface Run {
  pid?: number;
  resolve(outcome: CommandOutcome): void;
  reject(err: Error): void;
}

export class Spawner {
  private child: ChildProcess | undefined;
  private seq = 0;
  private readonly runs = new Map<number, Run>();
  /** Spawners killed by a run's watchdog, so their runs say why. */
  private readonly stalled = new WeakSet<ChildProcess>();

  /** Runs one command in the spawner; rejects with SpawnerDied if the spawner dies first. */
  run(spec: CommandSpec, signal?: AbortSignal): Promise<CommandOutcome> {
    const child = this.child ?? this.start();
    const id = ++this.seq;
    return new Promise<CommandOutcome>((resolve, reject) => {
      // The spawner enforces the command's timeout; this watches the spawner. A spawner
      // that never answers (stopped by its own command with kill -STOP $PPID, or frozen)
      // would hold the delivery, its listener and `daemon stop` for ever: kill it, so
      // its runs fail with SpawnerDied and run again on a fresh one.
      let watchdog: NodeJS.Timeout | undefined;
      let watchUntil = Infinity;
      const watch = (ms: number) => {
        if (Date.now() + ms >= watchUntil) return;
        watchUntil = Date.now() + ms;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          this.stalled.add(child);
          child.kill('SIGKILL');
        }, ms);
        watchdog.unref();
      };
      watch(spec.timeoutMs + SPAWNER_ANSWER_MS);
      const onAbort = () => {
        this.send(child, { t: 'kill', id, why: 'stopped by the daemon' });
        watch(SPAWNER_ANSWER_MS);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(watchdog);
        signal?.removeEventListener('abort', onAbort);
      };
      this.runs.set(id, {
        resolve: (outcome) => {
          cleanup();
          resolve(outcome);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      });
      // A run in flight keeps this process alive until its outcome is in; an idle spawner does not.
      if (this.runs.size === 1) child.channel?.ref();
      this.send(child, { t: 'run', id, spec });
      if (signal?.aborted) onAbort();
    });
  }

  private start(): ChildProcess {
    // No execArgv: the daemon's own flags (heap size, profiling) are not the spawner's.
    const child = fork(ENTRY, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    this.child = child;
    // An idle spawner does not keep the daemon alive (the channel is referenced only
    // while runs are in flight). When the daemon exits, the channel closes and the
    // spawner kills what it runs and exits.
    child.unref();
    child.channel?.unref();
    child.on('message', (reply: SpawnerReply) => {
      const run = this.runs.get(reply.id);
      if (!run) return;
      if (reply.t === 'started') {
        if (reply.pid !== undefined) run.pid = reply.pid;
      } else {
        this.runs.delete(reply.id);
        if (this.runs.size === 0) child.channel?.unref();
        run.resolve(reply.outcome);
      }
    });
    let gone = false;
    const died = (how: string) => {
      if (gone) return;
      gone = true;
      if (this.child === child) this.child = undefined;
      // Its commands lost their runner: nobody reads their output or reports their exit.
      // Kill their groups, so a rerun is not racing the first run.
      const err = new SpawnerDied(child.pid, how);
      for (const [id, run] of this.runs) {
        if (run.pid !== undefined) {
          try {
            process.kill(-run.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        this.runs.delete(id);
        run.reject(err);
      }
    };
    // On 'close', not 'exit': 'exit' can come before the channel's last
    // messages are read, and a run whose 'started' was still unread has no
    // pid, so its group would be left running (and racing its rerun) when
    // the spawner is killed right after starting it. 'close' waits for the
    // channel to end.
    child.on('close', (code, sig) => {
      if (this.stalled.has(child)) died(`did not answer within ${SPAWNER_ANSWER_MS} ms of a command's deadline and was killed`);
      else died(sig ? `was killed by ${sig}` : `exited with code ${String(code)}`);
    });
    child.on('error', (err) => died(`failed: ${err.message}`));
    return child;
  }

  private send(child: ChildProcess, request: SpawnerRequest): void {
    if (!child.connected) return;
    // A send that fails means the spawner is dying: its 'close' rejects the runs.
    child.send(request, (err) => {
      if (err && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
  }
}
