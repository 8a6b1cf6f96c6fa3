import { Argument, Option } from 'commander';
import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { parseDuration } from '../../client/duration.js';
import { validateQueueName } from '../../protocol/validate.js';
import { START_FROM } from '../../protocol/requests.js';
import type { ListenParams, StartFrom } from '../../protocol/requests.js';
import type { StreamEvent } from '../../protocol/wire.js';
import type { Sender } from '../../delivery/types.js';
import { action, examples } from '../action.js';
import { COMMANDS, QUEUES, declareValue } from '../values.js';
import { plural } from '../format.js';
import type { Context } from '../context.js';
import { parseCount } from './queue.js';

/** Messages the daemon may send ahead of the acks. */
const PREFETCH = 16;

export function registerListen(program: Command): void {
  program
    .command('listen')
    .alias('sub')
    .description('receive messages in the foreground: print each data line, or run --exec per message, in order')
    .addArgument(declareValue(new Argument('[queues...]', 'queues to listen to (default: all, including ones created later)'), { kind: QUEUES }))
    .addOption(declareValue(new Option('--exec <command>', 'run this per message: data on stdin, metadata in DISCUE_* variables'), { kind: COMMANDS }))
    .option('--shell', 'run --exec through /bin/sh')
    .option('--count <n>', 'exit 0 after this many messages')
    .option('--timeout <duration>', 'exit 124 if the time runs out first')
    .option('--grep <regex>', 'only messages whose data matches (others are skipped and acknowledged)')
    .addOption(
      declareValue(
        new Option('--filter <glob>', 'only messages whose name matches: * is one dot-separated segment, > the rest (repeatable; the daemon skips the others)').argParser(
          (v: string, prev: string[] = []) => [...prev, v],
        ),
        { repeatable: true },
      ),
    )
    .option('--name <name>', 'durable: the daemon keeps the position; the same command later gets what it missed')
    .addOption(new Option('--from <new|all>', 'new: messages from now on; all: the backlog too (first run of a --name)').choices(START_FROM).default('new'))
    .addHelpText(
      'after',
      examples(
        'discue listen orders                                 # print each new message data',
        'discue listen orders --exec ./notify.sh              # run per message, in order',
        'discue listen --count 1 --timeout 30s --grep shipped # CI: wait for one matching event',
        'discue listen orders --name ci-watch --json          # durable, NDJSON envelopes',
        "discue listen orders --filter 'order.*'              # only order.created, order.shipped, ...",
      ),
    )
    .action(action(async (ctx, [queues], opts) => listen(ctx, (queues as string[]) ?? [], opts)));
}

async function listen(ctx: Context, queueArgs: string[], opts: Record<string, unknown>): Promise<number> {
  // "New" means published after this command started, not after the daemon
  // got around to subscribing it: a CI script that starts `listen &` and then
  // the service under test cannot lose the event in between. The process's
  // start, not this line: loading the CLI takes long enough on a busy machine
  // for a `publish` started just after `listen &` to store its message first.
  const startedAt = Math.floor(performance.timeOrigin);
  const queues = queueArgs.map(validateQueueName);
  const count = opts.count === undefined ? undefined : parseCount(String(opts.count));
  const timeoutMs = opts.timeout === undefined ? undefined : parseDuration(String(opts.timeout), 'timeout');
  let grep: RegExp | undefined;
  if (opts.grep !== undefined) {
    try {
      grep = new RegExp(String(opts.grep));
    } catch (err) {
      throw new DiscueError('USAGE', `--grep: ${(err as Error).message}`);
    }
  }
  const from = opts.from as StartFrom;
  if (opts.shell && opts.exec === undefined) throw new DiscueError('USAGE', '--shell goes with --exec');
  const runner =
    opts.exec === undefined ? undefined : await commandRunner(String(opts.exec), opts.shell === true, opts.name as string | undefined, ctx.quiet);

  const client = await ctx.connect();
  const params: ListenParams = { queues, from, prefetch: PREFETCH };
  if (from === 'new') params.sinceMs = startedAt;
  if (opts.name !== undefined) params.name = String(opts.name);
  if (opts.filter) params.filters = opts.filter as string[];

  return new Promise<number>((resolve, reject) => {
    const backlog: StreamEvent[] = [];
    let processing = false;
    let seen = 0;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const abort = new AbortController();

    const stop = () => {
      finished = true;
      clearTimeout(timer);
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
      abort.abort();
    };
    const finish = (code: number) => {
      if (finished) return;
      stop();
      resolve(code);
    };
    const fail = (err: unknown) => {
      if (finished) return;
      stop();
      reject(err);
    };
    const onSigint = () => finish(EXIT.INTERRUPTED);
    const onSigterm = () => finish(EXIT.INTERRUPTED);
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        // An error like any other (exit 124), so --json gets {"error":{"code":"TIMEOUT",...}}.
        const got = count === undefined ? 'no message' : `${seen} of ${plural(count, 'message')}`;
        fail(new DiscueError('TIMEOUT', `listen got ${got} within ${withUnit(String(opts.timeout))}`));
      }, timeoutMs);
    }

    const handle = async (event: StreamEvent): Promise<void> => {
      const { message } = event;
      const matches = grep === undefined || grep.test(message.data);
      if (matches) {
        if (runner) {
          const result = await runner.send(message, 1, abort.signal);
          if (finished) return; // interrupted mid-command: not acknowledged
          if (!result.ok) {
            // Acknowledged only after the command succeeds: stop here, unacknowledged, so a
            // --name listener gets this message again (its output went to stdout / stderr already).
            const again = params.name === undefined ? '' : `; \`discue listen --name ${params.name}\` gets it again`;
            throw new DiscueError('DELIVERY_FAILED', `command failed for message ${message.id}: ${result.error ?? 'failed'}${again}`);
          }
        } else {
          const line = ctx.json ? JSON.stringify(message) + '\n' : message.data.endsWith('\n') ? message.data : message.data + '\n';
          // Acknowledged only once written: a reader that went away (`| head -1`)
          // must not cost a --name listener the message it never got.
          const err = await written(line);
          if (err?.code === 'EPIPE') {
            finish(EXIT.OK);
            return;
          }
          if (err) throw err;
        }
      }
      if (finished) return;
      client.notify('listen.ack', { stream: stream.id, tag: event.tag });
      if (matches) {
        seen++;
        if (count !== undefined && seen >= count) finish(EXIT.OK);
      }
    };

    const pump = async () => {
      if (processing) return;
      processing = true;
      try {
        while (!finished && backlog.length > 0) await handle(backlog.shift()!);
      } catch (err) {
        fail(err);
      } finally {
        processing = false;
      }
    };

    const stream = client.stream('listen', params, (event) => {
      backlog.push(event as StreamEvent);
      void pump();
    });
    stream.done.then(
      () => finish(EXIT.OK),
      (err: unknown) => fail(err),
    );
  });
}

/** Writes to stdout; resolves once written, with the error if that failed (EPIPE: the reader went away). */
function written(text: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => process.stdout.write(text, (err) => resolve(err ?? undefined)));
}

/** The duration as entered, with the unit a bare number stands for ("1" is 1s). */
function withUnit(duration: string): string {
  const text = duration.trim();
  return /^\d+(\.\d+)?$/.test(text) ? `${text}s` : text;
}

/**
 * The same runner the daemon uses for command listeners, without a timeout.
 * The command's output streams through as it comes (stdout dropped with --quiet).
 */
async function commandRunner(command: string, shell: boolean, name: string | undefined, quiet: boolean): Promise<Sender> {
  const [{ CommandSender }, { splitCommand }] = await Promise.all([
    import('../../delivery/command.js'),
    import('../../protocol/argv.js'),
  ]);
  return new CommandSender({
    id: name ?? 'listen',
    kind: 'exec',
    queues: [],
    command: shell ? [command] : splitCommand(command),
    shell,
    cwd: process.cwd(),
    timeoutMs: 2 ** 31 - 1,
    maxAttempts: 1,
    retryDelayMs: 0,
    concurrency: 1,
    state: 'active',
    createdAt: new Date().toISOString(),
  }, quiet ? { inline: true, stderr: process.stderr } : { inline: true, stdout: process.stdout, stderr: process.stderr });
}

