/**
 * The discue command line: builds the commander program, runs it, and sets
 * the process exit code. Only this function decides how the process ends.
 */
import { Command, CommanderError } from 'commander';
import { EXIT } from '../protocol/errors.js';
import { VERSION } from '../version.js';
import { lastExitCode } from './action.js';
import { registerCompletion } from './commands/completion.js';
import { registerConfig } from './commands/config.js';
import { registerDaemon } from './commands/daemon.js';
import { registerDeliveries } from './commands/deliveries.js';
import { registerListen } from './commands/listen.js';
import { registerListener } from './commands/listener.js';
import { registerMessages } from './commands/messages.js';
import { registerPublish } from './commands/publish.js';
import { registerQueue } from './commands/queue.js';
import { registerTop } from './commands/top.js';

export function buildProgram(): Command {
  const program = new Command('discue')
    .description('A local event broker: durable queues, broadcast to HTTP and command listeners.')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--json', 'machine output: one JSON document (NDJSON for streams)')
    .option('--socket <path>', 'daemon socket (default: $DISCUE_SOCKET, then $DISCUE_HOME/run/discue.sock)')
    .option('--no-color', 'no colour (also: NO_COLOR=1)')
    .option('-q, --quiet', 'print only data, no confirmations or notes')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError(process.argv.includes('--json') ? false : '(run with --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  discue queue create orders
  discue publish orders '{"data":"Order shipped"}'
  discue messages list orders
  discue daemon status

Exit codes: 0 ok, 1 failure, 2 usage, 3 daemon unreachable, 4 not found,
5 conflict, 124 timeout, 130 interrupted.
Environment: DISCUE_HOME (state of one broker), DISCUE_SOCKET, NO_COLOR.`,
    );
  registerDaemon(program);
  registerQueue(program);
  registerPublish(program);
  registerMessages(program);
  registerListener(program);
  registerListen(program);
  registerDeliveries(program);
  registerTop(program);
  registerConfig(program);
  registerCompletion(program);
  for (const command of allCommands(program)) {
    command.exitOverride();
    command.configureOutput({
      outputError: (text, write) =>
        write(
          process.argv.includes('--json')
            ? JSON.stringify({ error: { code: 'USAGE', message: text.replace(/^error: /, '').trim() } }) + '\n'
            : text.replace(/\n$/, '') + ' [USAGE]\n',
        ),
    });
  }
  return program;
}

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp();
    return;
  }
  try {
    await program.parseAsync(argv);
    process.exitCode = lastExitCode();
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
      process.exitCode = ok ? EXIT.OK : EXIT.USAGE;
      return;
    }
    throw err;
  }
}
