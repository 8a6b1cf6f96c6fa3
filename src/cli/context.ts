/**
 * What every command gets: the global options, output helpers that respect
 * --json/--quiet/colour, and a lazily opened client. Commands return an exit
 * code; only main() sets it on the process.
 */
import { DiscueClient } from '../client/client.js';
import { DiscueError, EXIT, exitCodeFor } from '../protocol/errors.js';
import type { ExitCode } from '../protocol/errors.js';
import { resolvePaths } from '../protocol/paths.js';
import type { BrokerPaths } from '../protocol/paths.js';
import { createColors } from './colors.js';
import type { Colors } from './colors.js';

export interface GlobalOptions {
  json?: boolean;
  socket?: string;
  color?: boolean;
  quiet?: boolean;
}

export class Context {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly paths: BrokerPaths;
  readonly colors: Colors;
  private client: DiscueClient | undefined;

  private constructor(options: GlobalOptions, colors: Colors) {
    this.json = options.json === true;
    this.quiet = options.quiet === true;
    this.paths = resolvePaths({ socket: options.socket });
    this.colors = colors;
  }

  static async create(options: GlobalOptions): Promise<Context> {
    const enabled =
      options.color !== false &&
      !('NO_COLOR' in process.env && process.env.NO_COLOR !== '') &&
      process.stdout.isTTY === true &&
      options.json !== true;
    return new Context(options, await createColors(enabled));
  }

  /** The client, connected (and the daemon started) on first use. */
  async connect(options: { autoStart?: boolean } = {}): Promise<DiscueClient> {
    this.client ??= await DiscueClient.connect({ socket: this.paths.socket, home: this.paths.home, ...options });
    return this.client;
  }

  async close(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }

  /** Data: always printed, on stdout. */
  print(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** Machine output: one JSON document on stdout. */
  printJson(value: unknown): void {
    process.stdout.write(JSON.stringify(value, null, process.stdout.isTTY ? 2 : undefined) + '\n');
  }

  /** A confirmation ("created queue orders"): stdout, silenced by --quiet and --json. */
  done(text: string): void {
    if (!this.quiet && !this.json) this.print(this.colors.green('✓ ') + text);
  }

  /** Diagnostics: stderr, silenced by --quiet. */
  note(text: string): void {
    if (!this.quiet) process.stderr.write(text + '\n');
  }

  /** Reports an error on stderr and returns the exit code it stands for. */
  fail(err: unknown): ExitCode {
    if (err instanceof DiscueError) {
      if (this.json) {
        process.stderr.write(JSON.stringify({ error: err.toWire() }) + '\n');
      } else {
        process.stderr.write(`${this.colors.red('error:')} ${err.message} ${this.colors.dim(`[${err.code}]`)}\n`);
      }
      return exitCodeFor(err.code);
    }
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`${this.colors.red('error:')} unexpected failure: ${message} ${this.colors.dim('[INTERNAL]')}\n`);
    return EXIT.FAILURE;
  }
}

export function usage(message: string): DiscueError {
  return new DiscueError('USAGE', message);
}
