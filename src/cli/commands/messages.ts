import { Argument } from 'commander';
import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { isMessageId } from '../../protocol/ids.js';
import { hasDurationUnits, parseDuration } from '../../client/duration.js';
import { validateQueueName } from '../../protocol/validate.js';
import type { Envelope } from '../../protocol/wire.js';
import type { DiscueClient } from '../../client/client.js';
import { MessagePager } from '../../client/pages.js';
import type { PageStart } from '../../client/pages.js';
import { action, examples } from '../action.js';
import { QUEUES, declareValue } from '../values.js';
import type { Context } from '../context.js';
import { parseFields, pick } from '../fields.js';
import { fields, plural, table } from '../format.js';
import { parseCount } from './queue.js';

export function registerMessages(program: Command): void {
  const messages = program
    .command('messages')
    .alias('msg')
    .description('read and delete stored messages')
    .addHelpText(
      'after',
      examples(
        'discue messages list orders --limit 20',
        'discue messages list orders --since 10m --json',
        'discue messages list orders --since 2026-11-27T10:00:00Z',
        'discue messages get orders 01JF8Z3K4M5N6P7Q8R9S0T1V2W',
      ),
    );

  messages
    .command('list')
    .alias('ls')
    .description('list a queue’s messages, oldest first')
    .addHelpText(
      'after',
      examples(
        'discue messages list orders --limit 20',
        'discue messages list orders --since 01JF8Z3K4M5N6P7Q8R9S0T1V2W   # after this id',
        'discue messages list orders --since 10m --json',
        'discue messages list orders --since 2026-11-27T10:00:00Z',
        'discue messages list orders --all > orders.ndjson               # every message, NDJSON',
        'discue messages list orders -q                                  # ids only',
        'discue messages list orders --fields id,name --json             # only these fields',
      ) +
        '\nWhen more messages follow than --limit shows, a hint on stderr says how to get\n' +
        'them: `more messages: ... --since <last id>` (with --json: {"next":{"since":"<last id>"}}).\n',
    )
    .addArgument(declareValue(new Argument('<queue>'), { kind: QUEUES }))
    .option('--limit <n>', 'at most this many (1-10000)', '100')
    .option('--since <id|time>', 'after this message id, or from this time (ISO 8601, or a duration ago like 10m)')
    .option('--all', 'every message (from --since on), streamed as NDJSON, page by page')
    .option('--fields <list>', `print only these fields, in this order (${MESSAGE_FIELDS.join(',')})`)
    .action(
      action(async (ctx, [queue], opts, command) => {
        const all = opts.all === true;
        if (all && command.getOptionValueSource('limit') === 'cli') {
          throw new DiscueError('USAGE', '--all lists every message; leave out --limit (or drop --all)');
        }
        const limit = parseCount(String(opts.limit));
        if (limit > 10_000) throw new DiscueError('INVALID_ARGUMENT', '--limit is at most 10000');
        const name = validateQueueName(queue);
        const chosen = opts.fields === undefined ? undefined : parseFields(String(opts.fields), MESSAGE_FIELDS, { published: 'publishedAt' });
        // Like `docker ps -q`: on a list, --quiet leaves only the ids.
        const output: Output = ctx.quiet ? 'ids' : all || ctx.json ? 'json' : 'table';
        const from: PageStart = opts.since === undefined ? {} : parseSince(String(opts.since));
        const client = await ctx.connect();
        if (all) return streamAll(client, name, from, output === 'ids' ? 'ids' : chosen);

        // Pages, not one request: 10,000 messages of 256 KiB would be a 2.5 GB
        // reply. JSON is written page by page, so it is never held whole.
        let json: JsonArrayWriter | undefined;
        const rows: Envelope[] = [];
        let remaining = limit;
        const pager = new MessagePager(client, name, from);
        let last: string | undefined;
        let damaged = 0;
        while (remaining > 0) {
          const reply = await pager.next(Math.min(PAGE, remaining));
          damaged += reply.damaged.length;
          const page = reply.messages;
          if (page.length === 0) break;
          // Opened only once a page arrived: an error leaves stdout empty.
          if (output === 'json') json ??= jsonArrayWriter();
          for (const m of page) {
            if (json) json.item(chosen ? pick(m, chosen) : m);
            else if (output === 'ids') ctx.print(m.id);
            else rows.push(m);
          }
          remaining -= page.length;
          last = page[page.length - 1]!.id;
        }
        if (output === 'json') (json ?? jsonArrayWriter()).end();
        else if (output === 'table') printTable(ctx, rows, chosen);
        // The limit was reached: one message past it says whether the list goes on.
        if (remaining === 0 && last !== undefined && output !== 'ids') {
          const more = await pager.next(1);
          if (more.messages.length > 0) {
            if (ctx.json) process.stderr.write(JSON.stringify({ next: { since: last } }) + '\n');
            else ctx.note(`more messages: discue messages list ${name} --since ${last}${command.getOptionValueSource('limit') === 'cli' ? ` --limit ${limit}` : ''} (or --all for every one)`);
          }
        }
        if (damaged > 0) {
          // Not silenced by --quiet: the listing is incomplete and the user must know.
          ctx.warn(`${plural(damaged, 'damaged message')} skipped: ${damaged === 1 ? 'it failed its checksum and is' : 'they failed their checksum and are'} never served (see \`discue daemon logs\`)`);
        }
        return EXIT.OK;
      }),
    );

  messages
    .command('get')
    .description('print one message (its data, or the envelope with --json)')
    .addHelpText(
      'after',
      examples(
        'discue messages get orders 01JF8Z3K4M5N6P7Q8R9S0T1V2W',
        'discue messages get orders 01JF8Z3K4M5N6P7Q8R9S0T1V2W --json',
      ),
    )
    .addArgument(declareValue(new Argument('<queue>'), { kind: QUEUES }))
    .argument('<id>')
    .action(
      action(async (ctx, [queue, id]) => {
        const client = await ctx.connect();
        const message = await client.request('messages.get', { queue: validateQueueName(queue), id: String(id) });
        if (ctx.json) ctx.printJson(message);
        else
          ctx.print(
            fields([
              ['id', message.id],
              ['queue', message.queue],
              ['name', message.name ?? '-'],
              ['published', message.publishedAt],
              ['data', message.data],
            ]),
          );
        return EXIT.OK;
      }),
    );

  messages
    .command('delete')
    .alias('rm')
    .description('delete one message')
    .addHelpText('after', examples('discue messages delete orders 01JF8Z3K4M5N6P7Q8R9S0T1V2W'))
    .addArgument(declareValue(new Argument('<queue>'), { kind: QUEUES }))
    .argument('<id>')
    .action(
      action(async (ctx, [queue, id]) => {
        const client = await ctx.connect();
        const result = await client.request('messages.delete', { queue: validateQueueName(queue), id: String(id) });
        if (ctx.json) ctx.printJson(result);
        else ctx.done(`deleted message ${result.id}`);
        return EXIT.OK;
      }),
    );
}

/** Messages asked for per request: 100 of the largest still fit a reply frame. */
const PAGE = 100;

/** What --fields may name: the envelope's fields. */
const MESSAGE_FIELDS = ['id', 'queue', 'name', 'data', 'publishedAt'] as const;
const HEADERS: Record<string, string> = { id: 'ID', queue: 'QUEUE', name: 'NAME', data: 'DATA', publishedAt: 'PUBLISHED' };

type Output = 'table' | 'json' | 'ids';

/**
 * The table (ID, PUBLISHED, NAME, DATA unless --fields says otherwise). A
 * single field prints its values alone, one a line and whole, for scripts
 * (`--fields data`).
 */
function printTable(ctx: Context, rows: Envelope[], chosen: string[] | undefined): void {
  if (rows.length === 0) {
    ctx.note('no messages');
    return;
  }
  const columns = chosen ?? ['id', 'publishedAt', 'name', 'data'];
  if (columns.length === 1) {
    const field = columns[0] as keyof Envelope;
    ctx.print(rows.map((m) => m[field] ?? '').join('\n'));
    return;
  }
  // Data whole: table() cuts it to a terminal's width, and a script reading a pipe gets all of it.
  ctx.print(table(columns.map((c) => HEADERS[c]!), rows.map((m) => columns.map((c) => m[c as keyof Envelope] ?? '-'))));
}

/**
 * `--all`: every message as NDJSON (or ids), a page at a time. The next page
 * is asked for only once stdout took the last one, so memory stays flat
 * however large the queue and however slow the reader. A reader that goes
 * away (`| head`) ends the listing quietly.
 */
async function streamAll(client: DiscueClient, queue: string, from: PageStart, shape: 'ids' | string[] | undefined): Promise<number> {
  const out = process.stdout;
  let failure: NodeJS.ErrnoException | undefined;
  // Stays attached: after EPIPE, writes still queued report it again.
  out.on('error', (err: NodeJS.ErrnoException) => (failure ??= err));
  const pager = new MessagePager(client, queue, from);
  while (failure === undefined) {
    const page = (await pager.next(PAGE)).messages;
    if (page.length === 0) break;
    let text = '';
    for (const m of page) text += (shape === 'ids' ? m.id : JSON.stringify(shape ? pick(m, shape) : m)) + '\n';
    if (!out.write(text)) await drained(out);
  }
  if (failure !== undefined && failure.code !== 'EPIPE') throw failure;
  return EXIT.OK;
}

/** Resolves once the stream wants more, or can take no more (it failed or closed). */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
    stream.on('close', done);
  });
}

/** Writes one JSON array to stdout an item at a time (the same text JSON.stringify would make). */
interface JsonArrayWriter {
  item(value: unknown): void;
  end(): void;
}

function jsonArrayWriter(): JsonArrayWriter {
  const pretty = process.stdout.isTTY === true;
  let count = 0;
  process.stdout.write('[');
  return {
    item(value) {
      const text = pretty ? '\n  ' + JSON.stringify(value, null, 2).replace(/\n/g, '\n  ') : JSON.stringify(value);
      process.stdout.write((count++ > 0 ? ',' : '') + text);
    },
    end() {
      process.stdout.write(pretty && count > 0 ? '\n]\n' : ']\n');
    },
  };
}

/** A message id, an ISO time, or a duration ago ("10m"). */
export function parseSince(text: string): { afterId: string } | { sinceMs: number } {
  if (isMessageId(text)) return { afterId: text };
  if (hasDurationUnits(text)) return { sinceMs: Date.now() - parseDuration(text, 'since') };
  const ms = Date.parse(text);
  if (!Number.isNaN(ms) && /^\d{4}-\d{2}-\d{2}/.test(text)) return { sinceMs: ms };
  throw new DiscueError(
    'INVALID_ARGUMENT',
    `--since takes a message id, an ISO time like 2026-11-27T10:00:00Z, or a duration ago like 10m; got ${JSON.stringify(text)}`,
  );
}
