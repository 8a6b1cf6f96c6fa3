import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { isMessageId } from '../../protocol/ids.js';
import { parseDuration, validateQueueName } from '../../protocol/messages.js';
import { action, examples } from '../action.js';
import { fields, table, truncate } from '../format.js';
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
      ),
    )
    .argument('<queue>')
    .option('--limit <n>', 'at most this many (1-10000)', '100')
    .option('--since <id|time>', 'after this message id, or from this time (ISO 8601, or a duration ago like 10m)')
    .action(
      action(async (ctx, [queue], opts) => {
        const limit = parseCount(String(opts.limit));
        if (limit > 10_000) throw new DiscueError('INVALID_ARGUMENT', '--limit is at most 10000');
        const name = validateQueueName(queue);
        let from: { afterId?: string; sinceMs?: number } = opts.since === undefined ? {} : parseSince(String(opts.since));
        const client = await ctx.connect();
        // Pages, not one request: 10,000 messages of 256 KiB would be a 2.5 GB
        // reply. JSON is written page by page, so it is never held whole.
        let json: JsonArrayWriter | undefined;
        const rows: string[][] = [];
        let remaining = limit;
        let damaged = 0;
        while (remaining > 0) {
          const params = { queue: name, limit: Math.min(PAGE, remaining), ...from };
          // A daemon started before an upgrade knows only messages.list (no damaged count).
          const reply = await client.request('messages.page', params).catch(async (err: unknown) => {
            if (!(err instanceof DiscueError && err.code === 'UNKNOWN_REQUEST')) throw err;
            return { messages: await client.request('messages.list', params), damaged: [] };
          });
          damaged += reply.damaged.length;
          const page = reply.messages;
          if (page.length === 0) break;
          // Opened only once a page arrived: an error leaves stdout empty.
          if (ctx.json) json ??= jsonArrayWriter();
          for (const m of page) {
            if (json) json.item(m);
            else rows.push([m.id, m.publishedAt, m.name ?? '-', truncate(m.data, 60)]);
          }
          remaining -= page.length;
          from = { afterId: page[page.length - 1]!.id };
        }
        if (ctx.json) (json ?? jsonArrayWriter()).end();
        else if (rows.length === 0) ctx.note('no messages');
        else ctx.print(table(['ID', 'PUBLISHED', 'NAME', 'DATA'], rows));
        if (damaged > 0) {
          // Not silenced by --quiet: the listing is incomplete and the user must know.
          process.stderr.write(
            `warning: ${damaged} damaged message(s) skipped: they failed their checksum and are never served (see \`discue daemon logs\`)\n`,
          );
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
    .argument('<queue>')
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
    .argument('<queue>')
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
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/.test(text)) return { sinceMs: Date.now() - parseDuration(text, 'since') };
  const ms = Date.parse(text);
  if (!Number.isNaN(ms) && /^\d{4}-\d{2}-\d{2}/.test(text)) return { sinceMs: ms };
  throw new DiscueError(
    'INVALID_ARGUMENT',
    `--since takes a message id, an ISO time like 2026-11-27T10:00:00Z, or a duration ago like 10m; got ${JSON.stringify(text)}`,
  );
}
