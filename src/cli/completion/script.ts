/**
 * Shell completion scripts, generated from the commander program, so a new
 * command or option completes as soon as it is registered (the files in
 * completions/ are regenerated with `npm run completions`; a test fails when
 * they drift).
 *
 * The scripts know the command tree statically. Only queue and listener names
 * are dynamic: the scripts ask `discue __complete queues|listeners`, which
 * answers from a running daemon within about a second and prints nothing
 * (never starting a daemon) when there is none.
 */
import type { Command } from 'commander';
import { bashScript } from './bash.js';
import { fishScript } from './fish.js';
import { completionModel } from './model.js';
import type { Shell } from './shell.js';
import { zshScript } from './zsh.js';

export function completionScript(program: Command, shell: Shell): string {
  const model = completionModel(program);
  switch (shell) {
    case 'bash':
      return bashScript(model);
    case 'zsh':
      return zshScript(model);
    case 'fish':
      return fishScript(model);
  }
}
