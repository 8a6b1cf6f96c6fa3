import { Argument, Option } from 'commander';
import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { formatDuration, parseDuration } from '../../client/duration.js';
import { DEFAULT_CONCURRENCY, DEFAULT_RETRY_DELAY_MS, MAX_CONCURRENCY, MOST_ATTEMPTS } from '../../protocol/defaults.js';
import { validateQueueName } from '../../protocol/validate.js';
import { START_FROM } from '../../protocol/requests.js';
import type { ListenerAddParams, StartFrom } from '../../protocol/requests.js';
import type { ListenerInfo } from '../../protocol/wire.js';
import { splitCommand } from '../../delivery/argv.js';
import { MAX_BACKOFF_MS } from '../../delivery/backoff.js';
import { action, examples } from '../action.js';
import { configKey } from '../config.js';
import { COMMANDS, LISTENERS, QUEUES, declareValue } from '../values.js';
import type { Context } from '../context.js';
import { fieldsTable, listFields, pick } from '../fields.js';
import { ago, fields, table } from '../format.js';
import { combinedHealth, healthText, lagText } from '../health.js';
import { parseCount } from './queue.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
/** What `listener list --fields` documents (a field a listener has is accepted too). */
const LISTENER_FIELDS = ['id', 'name', 'kind', 'queues', 'url', 'command', 'state', 'timeoutMs', 'maxAttempts', 'retryDelayMs', 'concurrency', 'createdAt', 'hasSecret', 'cwd', 'disabledReason', 'progress', 'stats'];
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
    .option('--shell', 'run --exec through /bin/sh (pipes, redirections); message content still never reaches the command line')
    .option('--any-host', 'with --exec on a NATS store: any daemon may run the command (default: only this host\'s)')
    .option('--timeout <duration>', `per attempt: HTTP request or command run time (default: config listener.timeout, else ${configKey('listener.timeout').default})`)
    .option('--max-attempts <n>', `attempts before a delivery is dead, 1 to ${MOST_ATTEMPTS} (default: config listener.maxAttempts, else ${configKey('listener.maxAttempts').default})`)
    .option('--retry-delay <duration>', `wait before the 2nd attempt; doubles each time (with jitter), up to ${formatDuration(MAX_BACKOFF_MS)}`, formatDuration(DEFAULT_RETRY_DELAY_MS))
    .option('--concurrency <n>', `deliveries in flight at once, 1 to ${MAX_CONCURRENCY} (>1 gives up strict order)`, String(DEFAULT_CONCURRENCY))
    .addOption(new Option('--from <new|all>', 'new: only messages stored from now on; all: the whole backlog too').choices(START_FROM).default('new'))
    .option('--if-missing', 'if a listener of this --name exists with the same settings, succeed with it (exit 5 if its settings differ)')
    .addHelpText(
      'after',
      examples(
        'discue listener add --queue orders --url https://example.test/hook --header "Authorization: Bearer t0k3n"',
        "discue listener add --queue orders --exec ./notify.sh --name mailer --if-missing   # idempotent, for CI",
        "discue listener add --queue orders --exec 'jq -r .id' --name ids --from all",
        "discue listener add --queue orders --shell --exec 'jq . >> orders.log'",
      ),
    )
    .action(
      action(async (ctx, _args, opts) => {
        const url = opts.url as string | undefined;
        const exec = opts.exec as string | undefined;
        if ((url === undefined) === (exec === undefined)) throw new DiscueError('USAGE', 'give exactly one of --url or --exec');
        const queues = ((opts.queue as string[] | undefined) ?? []).map(validateQueueName);
        if (queues.length === 0) throw new DiscueError('USAGE', 'give at least one --queue');
        const from = opts.from as StartFrom;
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
        if (url !== undefined) {
          params.url = url;
          if (opts.header) params.headers = parseHeaders(opts.header as string[]);
          if (opts.secret !== undefined) params.secret = String(opts.secret);
          if (opts.shell || opts.anyHost) throw new DiscueError('USAGE', `${opts.shell ? '--shell' : '--any-host'} goes with --exec`);
        } else {
          params.command = exec!;
          params.cwd = process.cwd();
          if (opts.shell) params.shell = true;
          if (opts.anyHost) params.anyHost = true;
          if (opts.header || opts.secret) throw new DiscueError('USAGE', '--header and --secret go with --url');
        }
        if (opts.ifMissing && params.name === undefined) {
          throw new DiscueError('USAGE', '--if-missing needs --name: the existing listener is found by its name');
        }
        const client = await ctx.connect();
        if (opts.ifMissing) {
          const existing = await findListener(client, params.name!, params.secret !== undefined);
          if (existing) return reportExisting(ctx, existing, params);
        }
        let info: ListenerInfo;
        try {
          info = await client.request('listener.add', params);
        } catch (err) {
          // Another run of the same set-up added it between our look-up and our add.
          if (!(opts.ifMissing && err instanceof DiscueError && err.code === 'LISTENER_EXISTS')) throw err;
          const existing = await findListener(client, params.name!, params.secret !== undefined);
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

async function findListener(client: Client, name: string, secret: boolean): Promise<ListenerInfo | undefined> {
  try {
    return await client.request('listener.get', { ref: name, secret });
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
  if (ctx.json) ctx.printJson(existing);
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
    compare('url', existing.url ?? '-', normalUrl(wanted.url!));
    compare('headers', headerText(existing.headers), headerText(wanted.headers));
    if (wanted.secret !== undefined && existing.secret !== wanted.secret) differences.push('secret differs');
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

function headerText(headers: Record<string, string> | undefined): string {
  const entries = Object.entries(headers ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k}: ${v}`).join('; ');
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

/** "ok", "-" before any attempt, or the failure streak in red. */
function healthCell(ctx: Context, l: ListenerInfo): string {
  const health = combinedHealth(l.progress ?? []);
  const text = healthText(health);
  return health.consecutiveFailures > 0 ? ctx.colors.red(`failing: ${text}`) : text;
}

function stateText(ctx: Context, l: ListenerInfo): string {
  if (l.state === 'active') return ctx.colors.green('active');
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
