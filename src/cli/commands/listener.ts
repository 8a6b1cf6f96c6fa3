import { Argument, Option } from 'commander';
import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { formatDuration, parseDuration } from '../../client/duration.js';
import { DEFAULT_CONCURRENCY, DEFAULT_RETRY_DELAY_MS, MAX_BACKOFF_MS, MAX_CONCURRENCY, MOST_ATTEMPTS } from '../../protocol/defaults.js';
import { validateQueueName } from '../../protocol/validate.js';
import { START_FROM } from '../../protocol/requests.js';
import type { ListenerAddParams, ListenerReplayParams, ListenerUpdateParams } from '../../protocol/requests.js';
import type { ListenerInfo } from '../../protocol/wire.js';
import { maskListener, maskUrl } from '../../protocol/redact.js';
import { splitCommand } from '../../protocol/argv.js';
import { action, examples } from '../action.js';
import { configKey } from '../config.js';
import { COMMANDS, LISTENERS, QUEUES, declareValue } from '../values.js';
import type { Context } from '../context.js';
import { fieldsTable, listFields, pick } from '../fields.js';
import { ago, fields, table } from '../format.js';
import { combinedHealth, healthText, lagText } from '../health.js';
import { parseSince } from './messages.js';
import { parseCount } from './queue.js';
import { confirm } from '../confirm.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
/** What `listener list --fields` documents (a field a listener has is accepted too). */
const LISTENER_FIELDS = ['id', 'name', 'kind', 'queues', 'url', 'command', 'state', 'timeoutMs', 'maxAttempts', 'retryDelayMs', 'concurrency', 'createdAt', 'hasSecret', 'cwd', 'disabledReason', 'filters', 'rate', 'livenessUrl', 'progress', 'stats'];
const FILTER_HELP = 'only messages whose name matches this glob: * is one dot-separated segment, > the rest (repeatable; any match delivers)';
/** The table's columns that are not fields, and where their values come from. */
const LISTENER_COLUMNS = {
  target: 'url or command',
  pending: 'stats (stats.pending)',
  lag: 'stats (stats.lagMs)',
  delivered: 'progress (per queue)',
  dead: 'progress (per queue)',
  last: 'progress (lastDeliveryAt, per queue)',
  health: 'progress (consecutiveFailures, lastError, nextAttemptAt, per queue)',
};

export function registerListener(program: Command): void {
  const listener = program
    .command('listener')
    .description('register durable listeners that the daemon delivers to (HTTP URLs, commands)')
    .addHelpText(
      'after',
      examples(
        'discue listener add --queue orders --queue payments --url http://127.0.0.1:8080/hook --name dashboard',
        "discue listener add --queue orders --exec './notify.sh --verbose' --name mailer --max-attempts 8",
        'discue listener list',
        'discue listener show dashboard --secret',
        'discue listener pause mailer ; discue listener resume mailer',
        "discue listener update dashboard --filter 'order.*' --filter payment.failed",
        'discue listener replay dashboard --since 2h',
      ),
    );

  listener
    .command('add')
    .description('register a listener; it receives every message stored after now (or all with --from all)')
    .option('--url <url>', 'POST each message to this URL (Standard Webhooks headers and signature)')
    .addOption(declareValue(new Option('--exec <command>', 'run this command per message: data on stdin, metadata in DISCUE_* variables'), { kind: COMMANDS }))
    .addOption(declareValue(new Option('--queue <queue>', 'queue to listen to (repeat for several)').argParser(collect), { kind: QUEUES, repeatable: true }))
    .option('--name <name>', 'a name to refer to it by (unique)')
    .addOption(declareValue(new Option('--header <key:value>', 'extra HTTP header (repeatable)').argParser(collect), { repeatable: true }))
    .option('--secret <whsec>', 'signing secret to use instead of a generated one')
    .option('--cloudevents', 'with --url: add the CloudEvents 1.0 binary headers (ce-*) to each request, besides the signature')
    .option('--shell', 'run --exec through /bin/sh (pipes, redirections); message content still never reaches the command line')
    .option('--any-host', 'with --exec on a NATS store: any daemon may run the command (default: only this host\'s)')
    .option('--timeout <duration>', `per attempt: HTTP request or command run time (default: config listener.timeout, else ${configKey('listener.timeout').default})`)
    .option('--max-attempts <n>', `attempts before a delivery is dead, 1 to ${MOST_ATTEMPTS} (default: config listener.maxAttempts, else ${configKey('listener.maxAttempts').default})`)
    .option('--retry-delay <duration>', `wait before the 2nd attempt; doubles each time (with jitter), up to ${formatDuration(MAX_BACKOFF_MS)}`, formatDuration(DEFAULT_RETRY_DELAY_MS))
    .option('--concurrency <n>', `deliveries in flight at once, 1 to ${MAX_CONCURRENCY} (>1 gives up strict order)`, String(DEFAULT_CONCURRENCY))
    // Words to complete, checked by parseFrom (a time is allowed too, so not commander's choices).
    .addOption(
      declareValue(new Option('--from <new|all|time>', 'new: only messages stored from now on; all: the whole backlog too; a time (ISO 8601, or a duration ago like 2h): messages stored from then on').default('new'), {
        kind: { kind: 'words', words: START_FROM },
      }),
    )
    .addOption(declareValue(new Option('--filter <glob>', FILTER_HELP).argParser(collect), { repeatable: true }))
    .option('--rate <N/s|N/m>', 'send at most N messages a second (N/s) or a minute (N/m), evenly spaced')
    .option('--liveness-url <url>', 'after a failed delivery, GET this URL: until it answers 2xx no attempt is spent and nothing goes dead')
    .option('--if-missing', 'if a listener of this --name exists with the same settings, succeed with it (exit 5 if its settings differ)')
    .addHelpText(
      'after',
      examples(
        'discue listener add --queue orders --url https://example.test/hook --header "Authorization: Bearer t0k3n"',
        "discue listener add --queue orders --exec ./notify.sh --name mailer --if-missing   # idempotent, for CI",
        "discue listener add --queue orders --exec 'jq -r .id' --name ids --from all",
        "discue listener add --queue orders --shell --exec 'jq . >> orders.log'",
        "discue listener add --queue orders --url http://127.0.0.1:8080/hook --filter 'order.*' --filter payment.failed",
        'discue listener add --queue orders --url http://127.0.0.1:8080/hook --rate 20/s --liveness-url http://127.0.0.1:8080/healthz',
        'discue listener add --queue orders --exec ./rebuild.sh --from 2026-11-27T10:00:00Z',
      ),
    )
    .action(
      action(async (ctx, _args, opts) => {
        const url = opts.url as string | undefined;
        const exec = opts.exec as string | undefined;
        if ((url === undefined) === (exec === undefined)) throw new DiscueError('USAGE', 'give exactly one of --url or --exec');
        const queues = ((opts.queue as string[] | undefined) ?? []).map(validateQueueName);
        if (queues.length === 0) throw new DiscueError('USAGE', 'give at least one --queue');
        const from = parseFrom(String(opts.from));
        const params: ListenerAddParams = {
          kind: url !== undefined ? 'http' : 'exec',
          queues,
          from,
          timeoutMs: parseDuration(String(opts.timeout ?? ctx.setting('listener.timeout')), 'timeout'),
          maxAttempts: parseCount(String(opts.maxAttempts ?? ctx.setting('listener.maxAttempts'))),
          retryDelayMs: parseDuration(String(opts.retryDelay), 'retry delay'),
          concurrency: parseCount(String(opts.concurrency)),
        };
        if (opts.name !== undefined) params.name = String(opts.name);
        if (opts.filter) params.filters = opts.filter as string[];
        if (opts.rate !== undefined) params.rate = String(opts.rate);
        if (url !== undefined) {
          params.url = url;
          if (opts.livenessUrl !== undefined) params.livenessUrl = String(opts.livenessUrl);
          if (opts.header) params.headers = parseHeaders(opts.header as string[]);
          if (opts.secret !== undefined) params.secret = String(opts.secret);
          if (opts.cloudevents) params.cloudevents = true;
          if (opts.shell || opts.anyHost) throw new DiscueError('USAGE', `${opts.shell ? '--shell' : '--any-host'} goes with --exec`);
        } else {
          params.command = exec!;
          params.cwd = process.cwd();
          if (opts.shell) params.shell = true;
          if (opts.anyHost) params.anyHost = true;
          if (opts.header || opts.secret || opts.cloudevents || opts.livenessUrl !== undefined) throw new DiscueError('USAGE', '--header, --secret, --cloudevents and --liveness-url go with --url');
        }
        if (opts.ifMissing && params.name === undefined) {
          throw new DiscueError('USAGE', '--if-missing needs --name: the existing listener is found by its name');
        }
        const client = await ctx.connect();
        if (opts.ifMissing) {
          const existing = await findListener(client, params.name!);
          if (existing) return reportExisting(ctx, existing, params);
        }
        let info: ListenerInfo;
        try {
          info = await client.request('listener.add', params);
        } catch (err) {
          // Another run of the same set-up added it between our look-up and our add.
          if (!(opts.ifMissing && err instanceof DiscueError && err.code === 'LISTENER_EXISTS')) throw err;
          const existing = await findListener(client, params.name!);
          if (!existing) throw err;
          return reportExisting(ctx, existing, params);
        }
        if (ctx.json) {
          ctx.printJson(info);
        } else {
          ctx.done(`added listener ${info.name ?? info.id} (${info.id}) on ${info.queues.join(', ')}`);
          if (info.secret) {
            ctx.print(`signing secret: ${info.secret}`);
            ctx.note('  (verify webhook-signature with it; `discue listener show ' + (info.name ?? info.id) + ' --secret` shows it again)');
          }
        }
        return EXIT.OK;
      }),
    );

  listener
    .command('list')
    .alias('ls')
    .description('list listeners with their state and progress')
    .addOption(declareValue(new Option('--queue <queue>', 'only listeners of this queue'), { kind: QUEUES }))
    .option('--fields <list>', `print only these fields (${LISTENER_FIELDS.join(',')})`)
    .addHelpText(
      'after',
      examples('discue listener list', 'discue listener list --queue orders --json', 'discue listener list -q                   # ids only', 'discue listener list --fields name,state,url'),
    )
    .action(
      action(async (ctx, _args, opts) => {
        const client = await ctx.connect();
        const params = opts.queue === undefined ? {} : { queue: validateQueueName(opts.queue) };
        const list = await client.request('listener.list', params);
        // On a list, -q is the ids alone (like `docker ps -q`); --fields picks, for the table and JSON alike.
        if (ctx.quiet) {
          if (list.length > 0) ctx.print(list.map((l) => l.id).join('\n'));
          return EXIT.OK;
        }
        if (opts.fields !== undefined) {
          const chosen = listFields(String(opts.fields), LISTENER_FIELDS, list, LISTENER_COLUMNS);
          if (ctx.json) ctx.printJson(list.map((l) => pick(l, chosen)));
          else if (list.length > 0) ctx.print(fieldsTable(list, chosen));
          return EXIT.OK;
        }
        if (ctx.json) ctx.printJson(list);
        else if (list.length === 0) ctx.note('no listeners: add one with `discue listener add`');
        else
          ctx.print(
            table(
              ['ID', 'NAME', 'KIND', 'TARGET', 'QUEUES', 'STATE', 'PENDING', 'LAG', 'DELIVERED', 'DEAD', 'LAST', 'HEALTH'],
              list.map((l) => {
                const sum = totals(l);
                return [
                  l.id,
                  l.name ?? '-',
                  l.kind,
                  target(l),
                  l.allQueues ? '*' : l.queues.join(','),
                  stateText(ctx, l),
                  String(l.stats?.pending ?? 0),
                  lagText(l.stats?.lagMs ?? 0),
                  String(sum.delivered),
                  String(sum.dead),
                  ago(sum.lastDeliveryAt),
                  healthCell(ctx, l),
                ];
              }),
            ),
          );
        return EXIT.OK;
      }),
    );

  listener
    .command('show')
    .description('show one listener')
    .addArgument(declareValue(new Argument('<ref>', 'listener id or name'), { kind: LISTENERS }))
    .option('--secret', 'include the signing secret and the password in the URL')
    .addHelpText('after', examples('discue listener show dashboard', 'discue listener show dashboard --secret --json'))
    .action(
      action(async (ctx, [ref], opts) => {
        const client = await ctx.connect();
        const info = await client.request('listener.get', { ref: String(ref), secret: opts.secret === true });
        if (ctx.json) {
          ctx.printJson(info);
          return EXIT.OK;
        }
        const pairs: [string, string][] = [
          ['id', info.id],
          ['name', info.name ?? '-'],
          ['kind', info.kind],
          ['target', target(info)],
          ['queues', info.allQueues ? '* (all)' : info.queues.join(', ')],
          ['state', stateText(ctx, info) + (info.disabledReason ? ` (${info.disabledReason})` : '')],
          ['timeout', formatDuration(info.timeoutMs)],
          ['max attempts', String(info.maxAttempts)],
          ['retry delay', `${formatDuration(info.retryDelayMs)}, doubling`],
          ['concurrency', String(info.concurrency)],
          ['created', info.createdAt],
        ];
        pairs.push(['filters', info.filters?.length ? info.filters.join(' ') : 'none (every message)']);
        pairs.push(['rate', info.rate ? `${info.rate}${throttled(info) ? ' (throttled now)' : ''}` : 'unlimited']);
        if (info.livenessUrl) pairs.push(['liveness url', `${info.livenessUrl} (${livenessText(info)})`]);
        if (info.headers) pairs.push(['headers', Object.entries(info.headers).map(([k, v]) => `${k}: ${v}`).join('; ')]);
        if (info.secret) pairs.push(['secret', info.secret]);
        else if (info.hasSecret) pairs.push(['secret', '(hidden; --secret shows it)']);
        pairs.push(['health', healthCell(ctx, info)]);
        for (const p of info.progress ?? []) {
          pairs.push([
            `queue ${p.queue}`,
            `cursor ${p.cursor ?? '-'}, pending ${p.pending ?? 0}, lag ${lagText(p.lagMs ?? 0)}, delivered ${p.delivered}, failed attempts ${p.failedAttempts}, dead ${p.dead}, in flight ${p.inFlight}`,
          ]);
          // The whole error: the health line above names only its code.
          if (p.lastError) pairs.push(['  last error', p.lastError.replace(/\s+/g, ' ')]);
        }
        ctx.print(fields(pairs));
        return EXIT.OK;
      }),
    );

  listener
    .command('remove')
    .alias('rm')
    .description('remove a listener with its progress and delivery records')
    .addArgument(declareValue(new Argument('<ref>', 'listener id or name'), { kind: LISTENERS }))
    .addHelpText('after', examples('discue listener remove mailer'))
    .action(
      action(async (ctx, [ref]) => {
        const client = await ctx.connect();
        const result = await client.request('listener.remove', { ref: String(ref) });
        if (ctx.json) ctx.printJson(result);
        else ctx.done(`removed listener ${String(ref)}`);
        return EXIT.OK;
      }),
    );

  listener
    .command('update')
    .description('change what a listener receives and how: filters, rate limit, liveness URL (it goes on from where it is)')
    .addArgument(declareValue(new Argument('<ref>', 'listener id or name'), { kind: LISTENERS }))
    .addOption(declareValue(new Option('--filter <glob>', FILTER_HELP + '; replaces its filters').argParser(collect), { repeatable: true }))
    .option('--no-filter', 'remove its filters: every message again')
    .option('--rate <N/s|N/m>', 'send at most N messages a second or a minute')
    .option('--no-rate', 'remove its rate limit')
    .option('--liveness-url <url>', 'GET this URL after a failed delivery before spending another attempt')
    .option('--no-liveness-url', 'remove its liveness URL')
    .addHelpText(
      'after',
      examples(
        "discue listener update dashboard --filter 'order.*' --filter payment.failed",
        'discue listener update dashboard --no-filter',
        'discue listener update mailer --rate 600/m',
      ),
    )
    .action(
      action(async (ctx, [ref], opts) => {
        const params: ListenerUpdateParams = { ref: String(ref) };
        if (opts.filter === false) params.filters = null;
        else if (Array.isArray(opts.filter)) params.filters = opts.filter as string[];
        if (opts.rate === false) params.rate = null;
        else if (opts.rate !== undefined) params.rate = String(opts.rate);
        if (opts.livenessUrl === false) params.livenessUrl = null;
        else if (opts.livenessUrl !== undefined) params.livenessUrl = String(opts.livenessUrl);
        if (Object.keys(params).length === 1) {
          throw new DiscueError('USAGE', 'nothing to update: give --filter, --no-filter, --rate, --no-rate, --liveness-url or --no-liveness-url');
        }
        const client = await ctx.connect();
        const info = await client.request('listener.update', params);
        if (ctx.json) ctx.printJson(info);
        else ctx.done(`updated listener ${info.name ?? info.id}: filters ${info.filters?.join(' ') ?? 'none'}, rate ${info.rate ?? 'unlimited'}${info.livenessUrl ? `, liveness ${info.livenessUrl}` : ''}`);
        return EXIT.OK;
      }),
    );

  listener
    .command('replay')
    .description('move one listener back to a point and deliver again, in order, every message it still holds from there (its filters apply)')
    .addArgument(declareValue(new Argument('<ref>', 'listener id or name'), { kind: LISTENERS }))
    .requiredOption('--since <id|time>', 'from this message id (included), time (ISO 8601) or duration ago (like 2h)')
    .option('-y, --yes', 'do not ask; needed when stdin is not a terminal')
    .addHelpText(
      'after',
      examples('discue listener replay dashboard --since 2h', 'discue listener replay dashboard --since 2026-11-27T10:00:00Z --yes', 'discue listener replay dashboard --since 01JF8Z3K4M5N6P7Q8R9S0T1V2W'),
    )
    .action(
      action(async (ctx, [ref], opts) => {
        const since = parseSince(String(opts.since));
        const params: ListenerReplayParams = 'afterId' in since ? { ref: String(ref), messageId: since.afterId } : { ref: String(ref), sinceMs: since.sinceMs };
        const client = await ctx.connect();
        const plan = await client.request('listener.replay', { ...params, dryRun: true });
        const what = `${plan.messages.toLocaleString('en-US')} message${plan.messages === 1 ? '' : 's'} of ${plan.queues.join(', ')} to ${String(ref)}`;
        if (opts.yes !== true) {
          if (!process.stdin.isTTY || !process.stderr.isTTY) {
            throw new DiscueError('CONFIRMATION_REQUIRED', `replay would send ${what} again: give --yes to do it without a terminal to ask on`);
          }
          await confirm(`Send ${what} again? [y/N] `, `nothing replayed: ${String(ref)} goes on from where it was (--yes skips the question)`);
        }
        const result = await client.request('listener.replay', params);
        if (ctx.json) ctx.printJson(result);
        else ctx.done(`replaying ${result.messages.toLocaleString('en-US')} message${result.messages === 1 ? '' : 's'} of ${result.queues.join(', ')} to ${String(ref)}`);
        return EXIT.OK;
      }),
    );

  for (const [verb, done] of [
    ['pause', 'paused'],
    ['resume', 'resumed'],
  ] as const) {
    listener
      .command(verb)
      .description(verb === 'pause' ? 'stop delivering (messages wait, nothing is lost)' : 'deliver again, from where it stopped (also re-enables a 410-disabled listener)')
      .addArgument(declareValue(new Argument('<ref>', 'listener id or name'), { kind: LISTENERS }))
      .addHelpText('after', examples(`discue listener ${verb} mailer`))
      .action(
        action(async (ctx, [ref]) => {
          const client = await ctx.connect();
          const info = await client.request(`listener.${verb}`, { ref: String(ref) });
          if (ctx.json) ctx.printJson(info);
          else ctx.done(`${done} listener ${info.name ?? info.id}`);
          return EXIT.OK;
        }),
      );
  }
}

type Client = Awaited<ReturnType<Context['connect']>>;

/**
 * With its credentials: `--if-missing` compares them (a masked URL or header
 * would always differ from the one given); they are masked again for output.
 */
async function findListener(client: Client, name: string): Promise<ListenerInfo | undefined> {
  try {
    return await client.request('listener.get', { ref: name, secret: true });
  } catch (err) {
    if (err instanceof DiscueError && err.code === 'LISTENER_NOT_FOUND') return undefined;
    throw err;
  }
}

/**
 * `listener add --if-missing` found the listener: the same settings succeed
 * with it, other settings are a conflict that names each difference (a CI
 * set-up that silently kept an old URL would deliver to the wrong place).
 */
function reportExisting(ctx: Context, existing: ListenerInfo, wanted: ListenerAddParams): number {
  const differences = listenerDifferences(existing, wanted);
  const name = existing.name ?? existing.id;
  if (differences.length > 0) {
    throw new DiscueError(
      'LISTENER_EXISTS',
      `listener ${name} exists with other settings: ${differences.join('; ')}; ` +
        `remove it first (\`discue listener remove ${name}\`) or give the same flags`,
      { details: { differences } },
    );
  }
  if (ctx.json) ctx.printJson(maskListener(existing));
  else ctx.done(`listener ${name} (${existing.id}) already exists on ${existing.queues.join(', ')}`);
  return EXIT.OK;
}

function listenerDifferences(existing: ListenerInfo, wanted: ListenerAddParams): string[] {
  const differences: string[] = [];
  const compare = (what: string, has: string, given: string) => {
    if (has !== given) differences.push(`${what} is ${has}, given ${given}`);
  };
  compare('kind', existing.kind, wanted.kind);
  compare('queues', [...existing.queues].sort().join(','), [...wanted.queues].sort().join(','));
  if (wanted.kind === 'http') {
    // Credentials are compared in full but named only masked: the error goes to CI logs.
    const wantedUrl = normalUrl(wanted.url!);
    if ((existing.url ?? '-') !== wantedUrl) differences.push(`url is ${maskUrl(existing.url ?? '-')}, given ${maskUrl(wantedUrl)}`);
    compare('headers', headerText(existing.headers), headerText(wanted.headers));
    for (const name of headerValuesDiffering(existing.headers, wanted.headers)) differences.push(`header ${name} has another value`);
    if (wanted.secret !== undefined && existing.secret !== wanted.secret) differences.push('secret differs');
    compare('cloudevents', String(existing.cloudevents === true), String(wanted.cloudevents === true));
  } else {
    const argv = wanted.shell ? [wanted.command!] : splitCommand(wanted.command!);
    compare('command', JSON.stringify(existing.command ?? []), JSON.stringify(argv));
    compare('shell', String(existing.shell === true), String(wanted.shell === true));
    compare('working directory', existing.cwd ?? '-', wanted.cwd ?? '-');
  }
  compare('timeout', formatDuration(existing.timeoutMs), formatDuration(wanted.timeoutMs!));
  compare('max attempts', String(existing.maxAttempts), String(wanted.maxAttempts));
  compare('retry delay', formatDuration(existing.retryDelayMs), formatDuration(wanted.retryDelayMs!));
  compare('concurrency', String(existing.concurrency), String(wanted.concurrency));
  return differences;
}

/** The URL as the daemon stores it (new URL adds the path's slash). */
function normalUrl(text: string): string {
  try {
    return new URL(text).toString();
  } catch {
    return text;
  }
}

/** The header names: their values are credentials, compared by headerValuesDiffering. */
function headerText(headers: Record<string, string> | undefined): string {
  const names = Object.keys(headers ?? {}).sort();
  return names.length === 0 ? 'none' : names.join(', ');
}

function headerValuesDiffering(has: Record<string, string> | undefined, given: Record<string, string> | undefined): string[] {
  return Object.keys(has ?? {})
    .filter((name) => given?.[name] !== undefined && given[name] !== has![name])
    .sort();
}

function parseHeaders(list: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const item of list) {
    const colon = item.indexOf(':');
    if (colon <= 0) throw new DiscueError('USAGE', `--header takes KEY:VALUE, got ${JSON.stringify(item)}`);
    headers[item.slice(0, colon).trim()] = item.slice(colon + 1).trim();
  }
  return headers;
}

function target(l: ListenerInfo): string {
  if (l.kind === 'http') return l.url ?? '-';
  if (l.kind === 'exec') return (l.shell ? 'sh -c ' : '') + (l.command ?? []).join(' ');
  return l.connected ? 'listen (connected)' : 'listen (disconnected)';
}

/** "ok", "-" before any attempt, the failure streak in red, or a receiver down by its liveness URL. */
function healthCell(ctx: Context, l: ListenerInfo): string {
  if (l.progress?.some((p) => p.liveness === 'down')) return ctx.colors.yellow('receiver down (liveness), waiting');
  const health = combinedHealth(l.progress ?? []);
  const text = healthText(health);
  const cell = health.consecutiveFailures > 0 ? ctx.colors.red(`failing: ${text}`) : text;
  return l.livenessUrl && cell !== '-' ? `${cell} (alive)` : cell;
}

function throttled(l: ListenerInfo): boolean {
  return l.progress?.some((p) => p.throttled === true) ?? false;
}

function livenessText(l: ListenerInfo): string {
  const down = l.progress?.some((p) => p.liveness === 'down');
  if (down) return 'down';
  return l.progress?.some((p) => p.liveness === 'alive') ? 'alive' : 'not checked yet';
}

/** 'new', 'all', or a time: an ISO time or a duration ago, as ms since epoch. */
function parseFrom(text: string): 'new' | 'all' | number {
  if (text === 'new' || text === 'all') return text;
  try {
    const since = parseSince(text);
    if ('sinceMs' in since) return since.sinceMs;
  } catch {
    // Reported below, naming --from.
  }
  throw new DiscueError('USAGE', `--from takes "new", "all", an ISO time like 2026-11-27T10:00:00Z or a duration ago like 2h; got ${JSON.stringify(text)}`);
}

function stateText(ctx: Context, l: ListenerInfo): string {
  if (l.state === 'active') return throttled(l) ? ctx.colors.yellow('throttled') : ctx.colors.green('active');
  if (l.state === 'paused') return ctx.colors.yellow('paused');
  return ctx.colors.red('disabled');
}

function totals(l: ListenerInfo): { delivered: number; dead: number; lastDeliveryAt?: string } {
  let delivered = 0;
  let dead = 0;
  let last: string | undefined;
  for (const p of l.progress ?? []) {
    delivered += p.delivered;
    dead += p.dead;
    if (p.lastDeliveryAt && (!last || p.lastDeliveryAt > last)) last = p.lastDeliveryAt;
  }
  return last ? { delivered, dead, lastDeliveryAt: last } : { delivered, dead };
}
