/**
 * The discue command line: builds the commander program, runs it, and sets
 * the process exit code from what the command returned; the process then
 * ends when nothing is left to do. Three things end it early, on purpose,
 * with process.exit: a reader that closed stdout (below), the `__complete`
 * watchdog (a wedged daemon must not hold a shell's Tab), and a foreground
 * daemon, which exits once stopped (daemon/server.ts) or when its start
 * failed half-way (commands/daemon.ts).
 *
 * Start-up is what every scripted call pays, so a command that names a known
 * command loads only that command's module (publish does not load top,
 * config or completion code); anything else gets the whole program.
 */
import type { Command } from 'commander';
import { CommanderError } from 'commander';
import { EXIT } from '../protocol/errors.js';
import { lastExitCode } from './action.js';
import { createRoot, finishProgram } from './root.js';

type Register = (program: Command) => void;

const ONE_COMMAND: Record<string, () => Promise<Register>> = {
  daemon: () => import('./commands/daemon.js').then((m) => m.registerDaemon),
  queue: () => import('./commands/queue.js').then((m) => m.registerQueue),
  publish: () => import('./commands/publish.js').then((m) => m.registerPublish),
  pub: () => import('./commands/publish.js').then((m) => m.registerPublish),
  messages: () => import('./commands/messages.js').then((m) => m.registerMessages),
  msg: () => import('./commands/messages.js').then((m) => m.registerMessages),
  listener: () => import('./commands/listener.js').then((m) => m.registerListener),
  listen: () => import('./commands/listen.js').then((m) => m.registerListen),
  sub: () => import('./commands/listen.js').then((m) => m.registerListen),
  deliveries: () => import('./commands/deliveries.js').then((m) => m.registerDeliveries),
  token: () => import('./commands/token.js').then((m) => m.registerToken),
  top: () => import('./commands/top.js').then((m) => m.registerTop),
  config: () => import('./commands/config.js').then((m) => m.registerConfig),
  version: () => import('./commands/version.js').then((m) => m.registerVersion),
  doctor: () => import('./commands/doctor.js').then((m) => m.registerDoctor),
  export: () => import('./commands/transfer.js').then((m) => m.registerExport),
  import: () => import('./commands/transfer.js').then((m) => m.registerImport),
};

/** Global options that take a value, so their value is not mistaken for the command. */
const VALUE_OPTIONS = new Set(['--socket']);

function commandName(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (VALUE_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

async function programFor(argv: string[]): Promise<Command> {
  const name = commandName(argv.slice(2));
  const load = name === undefined || !Object.hasOwn(ONE_COMMAND, name) ? undefined : ONE_COMMAND[name];
  if (!load) return (await import('./program.js')).buildProgram();
  const program = createRoot();
  (await load())(program);
  return finishProgram(program);
}

/**
 * A reader that went away (`discue messages list q --json | head -c 100`)
 * asked for no more output: the command ends at once, quietly, with exit 0,
 * as `git log | head` does from the shell's point of view. Exit 141
 * (SIGPIPE) would fail every such pipeline under `set -o pipefail`. Anything
 * the daemon had not yet answered is simply dropped with the connection.
 * A closed stderr loses only diagnostics; the command carries on.
 */
function endQuietlyOnClosedOutput(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.OK);
    throw err;
  });
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

export async function main(argv: string[] = process.argv): Promise<void> {
  endQuietlyOnClosedOutput();
  const program = await programFor(argv);
  if (argv.length <= 2) {
    program.outputHelp();
    return;
  }
  try {
    await program.parseAsync(argv);
    process.exitCode = lastExitCode();
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.help' && err.exitCode !== 0) {
        // A group without its subcommand (`discue queue`): commander showed its
        // help on stderr and nothing was done, a usage error like a typo.
        process.exitCode = EXIT.USAGE;
        if (argv.includes('--json')) process.stderr.write(JSON.stringify({ error: { code: 'USAGE', message: missingCommand(program, argv) } }) + '\n');
        return;
      }
      const ok = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
      process.exitCode = ok ? EXIT.OK : EXIT.USAGE;
      return;
    }
    throw err;
  }
}

/** "discue queue needs a command: create, list, ...", for the deepest group named on the command line. */
function missingCommand(program: Command, argv: string[]): string {
  let group = program;
  const path = [program.name()];
  let unknown: string | undefined;
  for (const arg of argv.slice(2)) {
    // `help` is commander's own command: `discue help queue` walks like `discue queue`.
    if (arg.startsWith('-') || arg === 'help') continue;
    const sub = group.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) {
      unknown = arg;
      break;
    }
    group = sub;
    path.push(sub.name());
  }
  const names = group.commands.map((c) => c.name()).filter((n) => !n.startsWith('_')).join(', ');
  const where = path.join(' ');
  return unknown === undefined ? `${where} needs a command: ${names} (see \`${where} --help\`)` : `unknown command '${unknown}'; ${where} has: ${names}`;
}
