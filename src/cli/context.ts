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
import { loadConfig, resolveSetting } from './config.js';
import type { ConfigValues, Setting } from './config.js';
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

  private constructor(
    options: GlobalOptions,
    colors: Colors,
    /** The config file's values ({} if it is missing or broken). */
    readonly config: ConfigValues,
    json: boolean,
    configSocket: string | undefined,
  ) {
    this.json = json;
    this.quiet = options.quiet === true;
    // Flag, then DISCUE_SOCKET (resolvePaths reads it), then the config file.
    this.paths = resolvePaths({ socket: options.socket ?? configSocket });
    this.colors = colors;
  }

  static async create(options: GlobalOptions): Promise<Context> {
    const { values: config, warning } = loadConfig();
    // Printed once the output mode is known (the config may be what sets it).
    const warnings = warning ? [warning] : [];
    // Every command needs these before it runs, so a bad value cannot fail
    // the command: it is reported and the built-in default applies.
    const lenient = (key: string): Setting | undefined => {
      try {
        return resolveSetting(key, config);
      } catch (err) {
        warnings.push(`${(err as Error).message}; using the default`);
        return undefined;
      }
    };
    const json = options.json === true || lenient('output')?.value === 'json';
    const colorSetting = lenient('color')?.value ?? 'auto';
    const enabled =
      options.color !== false &&
      !('NO_COLOR' in process.env && process.env.NO_COLOR !== '') &&
      colorSetting !== 'never' &&
      (colorSetting === 'always' || process.stdout.isTTY === true) &&
      !json;
    // DISCUE_SOCKET outranks the file; resolvePaths reads it when given no socket.
    const socket = process.env.DISCUE_SOCKET ? undefined : lenient('socket');
    const configSocket = socket?.source === 'config' ? socket.value : undefined;
    // Under --json, stderr carries JSON only, for scripts that parse it.
    for (const text of warnings) process.stderr.write(json ? JSON.stringify({ warning: { message: text } }) + '\n' : `warning: ${text}\n`);
    return new Context(options, await createColors(enabled), config, json, configSocket);
  }

  /**
   * A user default after environment > config file > built-in default (flags
   * are the caller's). A bad value in the environment or the file is an error.
   */
  setting(key: string): string {
    return resolveSetting(key, this.config).value;
  }

  /** The client, connected (and the daemon started) on first use. */
  async connect(options: { autoStart?: boolean } = {}): Promise<DiscueClient> {
    this.client ??= await DiscueClient.connect({
      socket: this.paths.socket,
      home: this.paths.home,
      // A person at a terminal learns that a daemon now runs in the background;
      // a script (stderr piped) or --json/--quiet gets nothing extra.
      onDaemonStarted: (pid) => {
        if (process.stderr.isTTY && !this.quiet && !this.json) process.stderr.write(`started daemon pid ${pid}\n`);
      },
      ...options,
    });
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

  /** Diagnostics: stderr, silenced by --quiet and by --json (where stderr carries JSON errors only). */
  note(text: string): void {
    if (!this.quiet && !this.json) process.stderr.write(text + '\n');
  }

  /**
   * A warning: stderr, not silenced by --quiet (the user must know); under
   * --json as {"warning":{"message"}}, since stderr carries JSON only there.
   */
  warn(text: string): void {
    process.stderr.write(this.json ? JSON.stringify({ warning: { message: text } }) + '\n' : `warning: ${text}\n`);
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
    // process.cwd() throws once the directory the shell stands in was removed
    // (a deleted build or temp dir); every command that records it (listener
    // add --exec, listen --exec) or resolves a relative path ended with a
    // stack trace as INTERNAL.
    const { code, syscall } = (err ?? {}) as NodeJS.ErrnoException;
    if (code === 'ENOENT' && syscall === 'uv_cwd') {
      return this.fail(new DiscueError('INVALID_ARGUMENT', 'the current directory no longer exists (it was removed): cd to an existing directory and run the command again'));
    }
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    if (this.json) {
      // Scripts parse stderr under --json: even a surprise is one JSON document.
      process.stderr.write(JSON.stringify({ error: { code: 'INTERNAL', message: `unexpected failure: ${message}` } }) + '\n');
    } else {
      process.stderr.write(`${this.colors.red('error:')} unexpected failure: ${message} ${this.colors.dim('[INTERNAL]')}\n`);
    }
    return EXIT.FAILURE;
  }
}

export function usage(message: string): DiscueError {
  return new DiscueError('USAGE', message);
}
