import { Argument } from 'commander';
import type { Command } from 'commander';
import { EXIT } from '../../protocol/errors.js';
import { action, examples } from '../action.js';
import { SHELLS } from '../completion/shell.js';
import type { Shell } from '../completion/shell.js';

/** The whole of `__complete`: a shell waits for it on every Tab. */
const COMPLETE_BUDGET_MS = 1000;

export function registerCompletion(program: Command): void {
  program
    .command('completion')
    .description('print the shell completion script for bash, zsh or fish')
    .addArgument(new Argument('<shell>', 'the shell to complete in').choices(SHELLS))
    .addHelpText(
      'after',
      examples(
        'source <(discue completion bash)                      # in ~/.bashrc',
        'mkdir -p ~/.local/share/bash-completion/completions && discue completion bash > ~/.local/share/bash-completion/completions/discue',
        'mkdir -p ~/.zfunc && discue completion zsh > ~/.zfunc/_discue   # with fpath=(~/.zfunc $fpath) before compinit',
        'mkdir -p ~/.config/fish/completions && discue completion fish > ~/.config/fish/completions/discue.fish',
      ) + '\nQueue and listener names complete from the running daemon; completing never starts one.\n',
    )
    .action(
      action(async (_ctx, [shell], _opts, command) => {
        // Loaded here: no other command pays for the generator. commander checked the shell (choices).
        const { completionScript } = await import('../completion/script.js');
        process.stdout.write(completionScript(command, shell as Shell));
        return EXIT.OK;
      }),
    );

  // Called by the completion scripts for the names of what exists right now.
  program
    .command('__complete', { hidden: true })
    .description('print queue or listener names for shell completion (nothing if the daemon is not running)')
    .argument('<kind>', 'queues or listeners')
    .action(
      action(async (ctx, [kind]) => {
        // A shell waits on this for every Tab. If a daemon accepts the
        // connection and then never answers (stopped with SIGSTOP, wedged),
        // its open socket would keep this process alive after the budget
        // below ran out (the handshake alone may wait 10 s); this unref'd
        // watchdog ends the process then, with nothing printed. When all
        // went well it never fires: nothing holds the event loop any more.
        setTimeout(() => process.exit(EXIT.OK), COMPLETE_BUDGET_MS + 500).unref();
        const names = await withinBudget(async () => {
          // Never autoStart: pressing Tab must not start a daemon.
          const client = await ctx.connect({ autoStart: false });
          if (kind === 'queues') return (await client.request('queue.list', {})).map((q) => q.name);
          if (kind === 'listeners') return (await client.request('listener.list', {})).map((l) => l.name ?? l.id);
          return [];
        });
        if (names.length > 0) ctx.print(names.join('\n'));
        // Whatever went wrong (no daemon, too slow, an unknown kind), completion offers nothing.
        return EXIT.OK;
      }),
    );
}

/** The names `work` finds within COMPLETE_BUDGET_MS; [] if it fails or takes longer. */
async function withinBudget(work: () => Promise<string[]>): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string[]>((resolve) => {
    timer = setTimeout(() => resolve([]), COMPLETE_BUDGET_MS);
  });
  try {
    return await Promise.race([work().catch(() => []), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
