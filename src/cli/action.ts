import type { Command } from 'commander';
import { assertArgvUtf8 } from './argv-utf8.js';
import { Context } from './context.js';
import type { GlobalOptions } from './context.js';

export type Opts = Record<string, unknown>;
export type CommandFn = (ctx: Context, args: unknown[], opts: Opts, command: Command) => Promise<number | void>;

let exitCode = 0;

/** The exit code the last command asked for; main() sets it on the process. */
export function lastExitCode(): number {
  return exitCode;
}

/**
 * Wraps a command body: builds its context, turns thrown errors into the
 * documented exit codes, and always closes the connection.
 */
export function action(fn: CommandFn): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const opts = command.opts<Opts>();
    const ctx = await Context.create(command.optsWithGlobals<GlobalOptions>());
    try {
      assertArgvUtf8();
      exitCode = (await fn(ctx, command.processedArgs as unknown[], opts, command)) ?? 0;
    } catch (err) {
      exitCode = ctx.fail(err);
    } finally {
      await ctx.close().catch(() => undefined);
    }
  };
}

/** Text appended to a command's --help: worked examples. */
export function examples(...lines: string[]): string {
  return '\nExamples:\n' + lines.map((l) => `  ${l}`).join('\n') + '\n';
}
