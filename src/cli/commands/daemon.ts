import { watch } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { Option } from 'commander';
import type { Command } from 'commander';
import { DiscueClient } from '../../client/client.js';
import { tailFile } from '../../client/logtail.js';
import {
  AUTOSTART_ENV,
  EXIT_ALREADY_RUNNING,
  MALLOC_DEFAULTED_ENV,
  MALLOC_TRIM_ENV,
  assertSocketOrNothing,
  isAlive,
  sleep,
  startDaemon,
} from '../../client/spawn.js';
import { parseDuration } from '../../client/duration.js';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import type { DaemonStatus } from '../../protocol/wire.js';
import { assertSocketPath } from '../../protocol/paths.js';
import { closeInheritedFds } from '../../protocol/fds.js';
import { parseReplicas, parseStore, storeText } from '../../protocol/store.js';
import type { StoreLocation } from '../../protocol/store.js';
import { action, examples } from '../action.js';
import type { Opts } from '../action.js';
import { resolveSetting } from '../config.js';
import type { Setting } from '../config.js';
import { DIRS, declareValue } from '../values.js';
import { configKey } from '../config.js';
import { assertSafeBind, parseListen } from '../../http/listen.js';
import type { HttpOptions } from '../../http/server.js';
import type { Context } from '../context.js';
import { bytes, fields, plural, uptime } from '../format.js';

export function registerDaemon(program: Command): void {
  const daemon = program
    .command('daemon')
    .description('start, stop and inspect the background broker')
    .addHelpText(
      'after',
      examples(
        'discue daemon start                  # start in the background (does nothing if running)',
        'discue daemon start --foreground     # run in this process, for systemd or CI services',
        'discue daemon status --json',
        'discue daemon logs -f',
      ),
    );

  daemon
    .command('start')
    .description('start the daemon (idempotent); other commands start it by themselves')
    .addHelpText(
      'after',
      examples(
        'discue daemon start                        # background; prints the pid',
        'discue daemon start --foreground           # under systemd, in a container, in CI',
        'discue daemon start --json                 # {"started":false,"pid":...} if it already ran',
        'discue daemon start --store /var/lib/discue   # LevelDB there (also DISCUE_STORE, config store)',
        'discue daemon start --store nats://10.0.0.5:4222,nats://10.0.0.6:4222 --replicas 3',
        'discue daemon start --http 127.0.0.1:7070  # with the HTTP API (see `discue token create`)',
      ),
    )
    .option('--foreground', 'run in this process and log to stderr, until SIGTERM')
    .addOption(storeOption('where the daemon keeps its data: a LevelDB directory or nats:// servers (default: config store, then $DISCUE_HOME/data)'))
    .option('--replicas <n>', 'NATS store: replicas of the streams it makes, 1 to 5 (default: config store.replicas, else 1)')
    .addOption(dataDirOption())
    .option('--http <host:port>', 'serve the HTTP API there (config http.listen); loopback only unless TLS or --http-insecure')
    .option('--http-insecure', 'allow --http on a non-loopback address without TLS (tokens then cross the network in clear)')
    .action(
      action(async (ctx, _args, opts) => {
        const { store, source } = storeSetting(ctx, opts);
        // Checked here, so a bad address is a usage error rather than a daemon that failed to start.
        const http = httpSettings(ctx, opts);
        if (opts.foreground) return runForeground(ctx, store, http);
        // Checked here as well as in the daemon: one started in the background could only say it in its log.
        (await import('../../daemon/store-check.js')).assertStoreSupported(store);
        const forward = [...httpFlags(opts), ...(opts.replicas !== undefined ? ['--replicas', String(store.replicas)] : [])];
        const { started } = await startDaemon(ctx.paths, { ...(source === 'flag' ? { store: store.location } : {}), args: forward });
        const status = await fetchStatus(ctx);
        // The daemon that already ran keeps its own store: saying "already
        // running" would let a script believe its data goes where it asked.
        if (!started && source !== 'default' && !sameStore(store, status.store)) {
          throw new DiscueError(
            'DATA_DIR_CONFLICT',
            `a daemon already runs for ${ctx.paths.home} (pid ${status.pid}) with its data in ${storeText(status.store)}, not in ${storeText(store)}; ` +
              `stop it first (\`discue daemon stop\`) to start one on ${store.location}`,
          );
        }
        if (ctx.json) ctx.printJson({ started, ...status });
        else ctx.done(started ? `daemon started (pid ${status.pid})` : `daemon already running (pid ${status.pid})`);
        for (const warning of status.warnings ?? []) ctx.warn(warning);
        return EXIT.OK;
      }),
    );

  daemon
    .command('stop')
    .description('stop the daemon: finish pending writes, close the database')
    .addHelpText(
      'after',
      examples(
        'discue daemon stop',
        'discue daemon stop --json                  # {"stopped":true,"pid":...}',
      ),
    )
    .action(action(async (ctx) => stop(ctx)));

  daemon
    .command('restart')
    .description('stop the daemon, then start it again')
    .addHelpText(
      'after',
      examples(
        'discue daemon restart                      # e.g. after upgrading discue',
      ),
    )
    .action(
      action(async (ctx) => {
        const code = await stop(ctx, true);
        if (code !== EXIT.OK) return code;
        await startDaemon(ctx.paths);
        const status = await fetchStatus(ctx);
        if (ctx.json) ctx.printJson(status);
        else ctx.done(`daemon restarted (pid ${status.pid})`);
        return EXIT.OK;
      }),
    );

  daemon
    .command('status')
    .description('show whether the daemon runs, and what it holds (exit 3 if not running)')
    .addHelpText(
      'after',
      examples(
        'discue daemon status',
        'discue daemon status --json | jq .pid',
        'discue daemon status -q || discue daemon start',
      ),
    )
    .action(
      action(async (ctx) => {
        let status: DaemonStatus;
        try {
          status = await fetchStatus(ctx);
        } catch (err) {
          if (err instanceof DiscueError && err.code === 'DAEMON_UNREACHABLE') {
            if (ctx.json) ctx.printJson({ running: false, socket: ctx.paths.socket, home: ctx.paths.home });
            else ctx.print(`daemon is not running (socket ${ctx.paths.socket})`);
            return EXIT.UNREACHABLE;
          }
          throw err;
        }
        if (ctx.json) {
          ctx.printJson({ running: true, ...status });
          return EXIT.OK;
        }
        ctx.print(
          fields([
            ['status', ctx.colors.green('running')],
            ['pid', String(status.pid)],
            ['version', `${status.version} (protocol ${status.protocol})`],
            ['uptime', uptime(status.uptimeMs)],
            ['home', status.home],
            ['store', storeText(status.store)],
            ...(status.cluster === undefined
              ? []
              : ([
                  ['servers', status.cluster.servers.join(', ')],
                  ['connected', status.cluster.connected ?? ctx.colors.yellow('no (reconnecting)')],
                  ['replicas', String(status.cluster.replicas)],
                  ['host', status.hostId ?? '-'],
                ] as [string, string][])),
            ['socket', status.socket],
            ...(status.http === undefined ? [] : [['http', status.http] as [string, string]]),
            ['queues', String(status.queues)],
            ['messages', String(status.messages)],
            ['memory', bytes(status.rssBytes)],
            ['clients', String(status.connections)],
          ]),
        );
        for (const warning of status.warnings ?? []) ctx.warn(warning);
        return EXIT.OK;
      }),
    );

  daemon
    .command('repair')
    .description('salvage a damaged database: copy the data directory aside, then rebuild it (the daemon must be stopped)')
    .addHelpText(
      'after',
      examples(
        'discue daemon stop && discue daemon repair    # when start-up says the database is damaged',
        'discue daemon repair --store /srv/discue/data --json',
      ),
    )
    .addOption(storeOption('the LevelDB directory to repair (default: config store, then $DISCUE_HOME/data)'))
    .addOption(dataDirOption())
    .action(
      action(async (ctx, _args, opts) => {
        const { store } = storeSetting(ctx, opts);
        // Under the home's daemon lock: refused while a daemon runs, and none starts meanwhile.
        const { repairHome } = await import('../../daemon/repair.js');
        const report = await repairHome(ctx.paths, store);
        if (ctx.json) {
          ctx.printJson(report);
          return EXIT.OK;
        }
        ctx.print(`copied ${report.dataDir} to ${report.backup} (untouched; remove it once all is well)`);
        ctx.done(`repaired ${report.dataDir}: ${plural(report.queues, 'queue')}, ${plural(report.messages, 'message')} recovered`);
        if (report.rebuilt.length > 0) ctx.print(`rebuilt from their messages: ${report.rebuilt.join(', ')}`);
        if (report.damaged > 0) {
          ctx.warn(`${plural(report.damaged, 'damaged record')} remain${report.damaged === 1 ? 's' : ''}; skipped and never served (\`discue messages list\` counts them)`);
        }
        return EXIT.OK;
      }),
    );

  daemon
    .command('logs')
    .description('print the daemon log ($DISCUE_HOME/daemon.log)')
    .addHelpText(
      'after',
      examples(
        'discue daemon logs',
        'discue daemon logs -n 200',
        'discue daemon logs -f                      # until Ctrl-C',
      ),
    )
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'how many lines from the end', '50')
    .action(
      action(async (ctx, _args, opts) => {
        // Digits only: parseInt read `-n 2x` as 2.
        if (!/^\d+$/.test(String(opts.lines).trim())) throw new DiscueError('USAGE', `--lines takes a whole number, got "${String(opts.lines)}"`);
        const lines = Number(String(opts.lines).trim());
        // -f goes on from the size before the tail was read. Taken after the
        // tail printed, a line logged meanwhile (a reader may act on the tail
        // at once) was skipped; now one logged in the instant between the two
        // reads may show twice, and none is lost.
        const followFrom = (await stat(ctx.paths.logFile).catch(() => ({ size: 0 }))).size;
        const tail = await tailFile(ctx.paths.logFile, lines === 0 ? 1 : lines);
        // --json: NDJSON, one object per log line (see logEntry).
        const write = ctx.json ? ndjsonLines() : (chunk: Buffer | string) => process.stdout.write(chunk);
        if (tail && lines > 0) write(tail + '\n');
        if (!opts.follow) {
          if (!tail) ctx.note(`no daemon log yet at ${ctx.paths.logFile}`);
          return EXIT.OK;
        }
        return follow(ctx.paths.logFile, write, followFrom);
      }),
    );
}

function storeOption(description: string): Option {
  return declareValue(new Option('--store <path>', description), { kind: DIRS });
}

/** The older name of --store (a directory only), kept for scripts; not in --help. */
function dataDirOption(): Option {
  return declareValue(new Option('--data-dir <dir>', 'the same as --store').hideHelp(), { kind: DIRS });
}

/**
 * The store after flag > DISCUE_STORE > config `store` > $DISCUE_HOME/data,
 * and where it came from; a NATS store with its replicas (--replicas >
 * store.replicas), credentials file and CA.
 */
function storeSetting(ctx: Context, opts: Opts): { store: StoreLocation; source: 'flag' | Setting['source'] } {
  const flag = opts.store as string | undefined;
  const dataDir = opts.dataDir as string | undefined;
  if (flag !== undefined && dataDir !== undefined) throw new DiscueError('USAGE', 'give --store or --data-dir (its older name), not both');
  let found: { store: StoreLocation; source: 'flag' | Setting['source'] };
  if (flag !== undefined || dataDir !== undefined) {
    found = { store: parseStore(flag ?? dataDir!, flag !== undefined ? '--store' : '--data-dir'), source: 'flag' };
  } else {
    const setting = resolveSetting('store', ctx.config);
    found = { store: parseStore(setting.value), source: setting.source };
  }
  const replicas = opts.replicas as string | undefined;
  if (found.store.kind !== 'nats') {
    if (replicas !== undefined) throw new DiscueError('USAGE', '--replicas goes with a NATS store (--store nats://…)');
    return found;
  }
  found.store.replicas = replicas !== undefined ? parseReplicas(replicas, '--replicas') : Number(resolveSetting('store.replicas', ctx.config).value);
  for (const key of ['creds', 'ca'] as const) {
    const value = resolveSetting(`store.${key}`, ctx.config).value;
    if (value !== '') found.store[key] = value;
  }
  return found;
}

/** The same store as a running daemon's (its status masks credentials, so compare masked). */
function sameStore(a: StoreLocation, b: StoreLocation): boolean {
  return a.kind === b.kind && storeText(a) === storeText(b);
}

async function fetchStatus(ctx: Context): Promise<DaemonStatus> {
  const client = await ctx.connect({ autoStart: false });
  return client.request('daemon.status', {});
}

async function stop(ctx: Context, quietIfStopped = false): Promise<number> {
  let client: DiscueClient;
  try {
    client = await ctx.connect({ autoStart: false });
  } catch (err) {
    if (err instanceof DiscueError && err.code === 'DAEMON_UNREACHABLE') {
      if (!quietIfStopped) {
        if (ctx.json) ctx.printJson({ stopped: false, running: false });
        else ctx.done('daemon is not running');
      }
      return EXIT.OK;
    }
    throw err;
  }
  const { pid } = await client.request('daemon.shutdown', {});
  await ctx.close();
  const deadline = Date.now() + 30_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new DiscueError('TIMEOUT', `the daemon (pid ${pid}) did not exit within 30s; see \`discue daemon logs\``);
    }
    await sleep(20);
  }
  if (!quietIfStopped) {
    if (ctx.json) ctx.printJson({ stopped: true, pid });
    else ctx.done(`daemon stopped (pid ${pid})`);
  }
  return EXIT.OK;
}

/** The HTTP flags of `daemon start`, passed on to the daemon it spawns. */
function httpFlags(opts: Record<string, unknown>): string[] {
  const args: string[] = [];
  if (typeof opts.http === 'string') args.push('--http', opts.http);
  if (opts.httpInsecure === true) args.push('--http-insecure');
  return args;
}

/**
 * The HTTP API's settings: --http > DISCUE_HTTP_LISTEN > http.listen; off by
 * default. The address is checked here; TLS files are read by the daemon.
 */
function httpSettings(ctx: Context, opts: Record<string, unknown>): HttpOptions | undefined {
  const listen = typeof opts.http === 'string' ? String(configKey('http.listen').parse(opts.http)) : ctx.setting('http.listen');
  if (listen === 'off') return undefined;
  const cert = ctx.setting('http.tlsCert');
  const key = ctx.setting('http.tlsKey');
  const http: HttpOptions = { listen, insecure: opts.httpInsecure === true };
  if (cert !== 'none') http.tlsCert = cert;
  if (key !== 'none') http.tlsKey = key;
  if ((http.tlsCert === undefined) !== (http.tlsKey === undefined)) {
    throw new DiscueError('INVALID_ARGUMENT', 'TLS needs both http.tlsCert and http.tlsKey (or neither)');
  }
  assertSafeBind(parseListen(listen).host, http.tlsCert !== undefined, http.insecure === true);
  const timeout = process.env.DISCUE_HTTP_TIMEOUT_MS;
  if (timeout !== undefined && timeout !== '') {
    if (!/^\d+$/.test(timeout) || Number(timeout) < 1) {
      throw new DiscueError('INVALID_ARGUMENT', `DISCUE_HTTP_TIMEOUT_MS must be a whole number of milliseconds, got ${JSON.stringify(timeout)}`);
    }
    http.timeoutMs = Number(timeout);
  }
  return http;
}

async function runForeground(ctx: Context, store: StoreLocation, http: HttpOptions | undefined): Promise<number> {
  // Before anything is opened: a daemon must not hold the descriptors of
  // whoever started it (a script's pipe would never see end-of-file).
  closeInheritedFds();
  // Read once and dropped, so nothing the daemon runs inherits it.
  const autoStarted = process.env[AUTOSTART_ENV] === '1';
  delete process.env[AUTOSTART_ENV];
  // glibc read it at exec; the starter added it (client/spawn.ts daemonEnv), the user did not.
  if (process.env[MALLOC_DEFAULTED_ENV] === '1') delete process.env[MALLOC_TRIM_ENV];
  delete process.env[MALLOC_DEFAULTED_ENV];
  assertSocketPath(ctx.paths.socket);
  await assertSocketOrNothing(ctx.paths.socket);
  const dedupe = dedupeSettings(process.env);
  const { runDaemon } = await import('../../daemon/server.js');
  try {
    await runDaemon({ home: ctx.paths.home, socket: ctx.paths.socket, store, dedupe, ...(http ? { http } : {}) });
  } catch (err) {
    // A start that failed half-way may leave a handle open (a listening
    // server, a timer) that would keep this process alive, answering with a
    // closed database. A daemon that could not start must be gone.
    setTimeout(() => process.exit(), 500).unref();
    if (err instanceof DiscueError && err.code === 'ALREADY_RUNNING') {
      const code = ctx.fail(err);
      return autoStarted ? EXIT_ALREADY_RUNNING : code;
    }
    if (err instanceof DiscueError) throw err;
    // The stack goes to the log for whoever debugs it, but the cause must be
    // the last line: the client that started us shows only the log's tail.
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    throw new DiscueError('INTERNAL', `the daemon could not start: ${(err as Error).message}`, { cause: err });
  }
  // Runs until a signal or a shutdown request ends the process.
  await new Promise<never>(() => undefined);
  return EXIT.OK;
}

/**
 * A daemon log line as JSON: `2026-11-27T04:08:11.671Z info  listener disabled
 * listener=hook status=410` becomes {"time","level","message","fields":{...}}.
 * A line of another shape (a stack trace) is {"message": line}.
 */
export function logEntry(line: string): Record<string, unknown> {
  const head = /^(\d{4}-\d{2}-\d{2}T[\d:.]+Z) (info|warn|error)\s+(.*)$/.exec(line);
  if (!head) return { message: line };
  const [, time, level, rest] = head as unknown as [string, string, string, string];
  const FIELD = / ([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)/y;
  // The message is what precedes the first field; fields run to the end of the line.
  for (let start = rest.indexOf(' '); start !== -1; start = rest.indexOf(' ', start + 1)) {
    const fields: Record<string, unknown> = {};
    FIELD.lastIndex = start;
    let match: RegExpExecArray | null;
    while ((match = FIELD.exec(rest)) !== null) {
      const raw = match[2]!;
      fields[match[1]!] = raw.startsWith('"') ? JSON.parse(raw) : raw;
      if (FIELD.lastIndex === rest.length) return { time, level, message: rest.slice(0, start), fields };
    }
  }
  return { time, level, message: rest };
}

/** A writer that turns log text, arriving in any chunks, into NDJSON of whole lines. */
function ndjsonLines(): (chunk: Buffer | string) => void {
  // A chunk may end inside a UTF-8 character: the decoder keeps its first bytes for the next one.
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return (chunk) => {
    const lines = (partial + (typeof chunk === 'string' ? chunk : decoder.write(chunk))).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line !== '') process.stdout.write(JSON.stringify(logEntry(line)) + '\n');
  };
}

async function follow(path: string, write: (chunk: Buffer) => void, from: number): Promise<number> {
  let position = from;
  const readNew = async () => {
    const size = (await stat(path).catch(() => ({ size: 0 }))).size;
    if (size < position) position = 0; // truncated or replaced
    if (size === position) return;
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(size - position);
      await handle.read(buffer, 0, buffer.length, position);
      position = size;
      write(buffer);
    } finally {
      await handle.close();
    }
  };
  const watcher = (() => {
    try {
      return watch(path, () => void readNew());
    } catch {
      return undefined;
    }
  })();
  // Polling too: watchers miss events on some file systems.
  const timer = setInterval(() => void readNew(), 500);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  clearInterval(timer);
  watcher?.close();
  return EXIT.INTERRUPTED;
}

/**
 * The idempotency key window and bound, read once at daemon start:
 * DISCUE_DEDUPE_WINDOW (a duration, default 10m) and DISCUE_DEDUPE_MAX_KEYS
 * (keys kept per queue, default 100000). Parsed here so the daemon is given
 * milliseconds and never parses a duration itself.
 */
function dedupeSettings(env: NodeJS.ProcessEnv): { windowMs?: number; maxKeys?: number } {
  const settings: { windowMs?: number; maxKeys?: number } = {};
  const window = env.DISCUE_DEDUPE_WINDOW;
  if (window !== undefined && window !== '') settings.windowMs = parseDuration(window, 'DISCUE_DEDUPE_WINDOW');
  const max = env.DISCUE_DEDUPE_MAX_KEYS;
  if (max !== undefined && max !== '') {
    const n = Number(max);
    if (!/^\d+$/.test(max) || !Number.isSafeInteger(n) || n < 1) {
      throw new DiscueError('INVALID_ARGUMENT', `DISCUE_DEDUPE_MAX_KEYS must be a whole number of at least 1, got ${JSON.stringify(max)}`);
    }
    settings.maxKeys = n;
  }
  return settings;
}
