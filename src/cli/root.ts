/**
 * The root of the commander program (global options, top-level help) and the
 * finishing touches every command gets (usage errors with a stable code).
 * Shared by the full program and the fast path that loads one command.
 */
import { Command, Option } from 'commander';
import { VERSION } from '../version.js';
import { FILES, declareValue } from './values.js';

export function createRoot(): Command {
  const program = new Command('discue')
    .description('A local event broker: durable queues, broadcast to HTTP and command listeners.')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--json', 'machine output: one JSON document (NDJSON for streams)')
    .addOption(declareValue(new Option('--socket <path>', 'daemon socket (default: $DISCUE_SOCKET, then $DISCUE_HOME/run/discue.sock)'), { kind: FILES }))
    .option('--no-color', 'no colour (also: NO_COLOR=1)')
    .option('-q, --quiet', 'print only data, no confirmations or notes')
    .helpOption('-h, --help', 'show help')
    // Every subcommand's --help lists the options it inherits (--json, --socket, ...), as gh does.
    .configureHelp({ showGlobalOptions: true })
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
Environment: DISCUE_HOME (state of one broker), DISCUE_SOCKET, NO_COLOR;
the other variables and the config keys: \`man discue\`, \`discue config --help\`.`,
    );
  return program;
}

/** Usage errors: exit code 2 and a stable code, as JSON with --json. */
export function finishProgram(program: Command): Command {
  for (const command of allCommands(program)) {
    command.exitOverride();
    command.configureOutput({
      // Under --json stderr carries JSON only: the help commander prints for a
      // group run without its subcommand is left out (main() reports USAGE).
      writeErr: (text) => {
        if (!process.argv.includes('--json') || text.startsWith('{')) process.stderr.write(text);
      },
      // The code goes on the first line, where `error: ...` is: commander adds
      // a second line for typos ("(Did you mean publish?)").
      outputError: (text, write) =>
        write(
          process.argv.includes('--json')
            ? JSON.stringify({ error: { code: 'USAGE', message: text.replace(/^error: /, '').trim().replace(/\n+/g, ' ') } }) + '\n'
            : text.replace(/\n$/, '').replace(/^(.*)/, '$1 [USAGE]') + '\n',
        ),
    });
  }

  return program;
}

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}
