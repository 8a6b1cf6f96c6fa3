/**
 * The spawner: a small long-lived process the daemon forks on its first
 * command delivery (spawner.ts). It runs every command of the daemon's
 * command listeners, so that the fork of each command copies this small
 * process's memory map on this process's thread, not the daemon's large one
 * on the thread that serves every client and HTTP listener.
 *
 * Protocol (Node IPC, JSON):
 *   in   {t:'run', id, spec}      -> out {t:'started', id, pid}, later {t:'done', id, outcome}
 *   in   {t:'kill', id, why}      -> the command's group is killed; its 'done' says why
 * When the daemon goes away (exit, crash, kill -9: the IPC channel closes),
 * every running command's process group is killed and the spawner exits.
 */
import { closeInheritedFds } from '../protocol/fds.js';
import { runCommand } from './run-command.js';
import type { RunningCommand } from './run-command.js';
import type { SpawnerReply, SpawnerRequest } from './spawner.js';

// First: the daemon's LevelDB files (opened without close-on-exec) would
// otherwise be open in every command. The IPC channel to the daemon stays.
closeInheritedFds([(process.channel as { fd?: number } | undefined)?.fd ?? -1]);

const running = new Map<number, RunningCommand>();

function send(reply: SpawnerReply): void {
  // The daemon is gone when this fails; 'disconnect' below cleans up.
  if (process.connected) process.send!(reply);
}

process.on('message', (request: SpawnerRequest) => {
  if (request.t === 'run') {
    const command = runCommand(request.spec);
    running.set(request.id, command);
    send({ t: 'started', id: request.id, pid: command.pid });
    void command.done.then((outcome) => {
      running.delete(request.id);
      send({ t: 'done', id: request.id, outcome });
    });
  } else if (request.t === 'kill') {
    running.get(request.id)?.kill(request.why);
  }
});

process.on('disconnect', () => {
  for (const command of running.values()) command.kill('the daemon stopped');
  process.exit(0);
});
