import { createReadStream } from 'node:fs';
import { Argument, Option } from 'commander';
import type { Command } from 'commander';
import { confirm } from '../confirm.js';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { MAX_FRAME_BYTES } from '../../protocol/frames.js';
import { formatDuration, parseDuration } from '../../client/duration.js';
import { validateQueueName } from '../../protocol/validate.js';
import type { QueueInfo } from '../../protocol/wire.js';
import { action, examples } from '../action.js';
import { FILES, QUEUES, declareValue } from '../values.js';
import type { Context } from '../context.js';
import { fieldsTable, listFields, pick } from '../fields.js';
import { ago, bytes, fields, plural, table } from '../format.js';

export function registerQueue(program: Command): void {
  const queue = program
    .command('queue')
    .description('create, inspect and remove queues')
    .addHelpText(
      'after',
      examples(
        'discue queue create orders',
        'discue queue create orders --schema order.schema.json --retention 7d --max-messages 100000',
        'discue queue list --json',
        'discue queue show orders',
        'discue queue update orders --retention none',
        'discue queue rename orders orders.v1',
        'discue queue delete orders --force',
      ),
    );

  queue
    .command('create')
    .description('create a queue')
    .argument('<name>', 'queue name: 1-64 characters of a-z A-Z 0-9 . _ -')
    .addOption(declareValue(new Option('--schema <file>', 'JSON Schema file that each message data (parsed as JSON) must satisfy'), { kind: FILES }))
    .option('--retention <duration>', 'remove messages older than this (e.g. 7d, 12h)')
    .option('--max-messages <n>', 'keep at most this many messages; the oldest go first')
    .option('--if-missing', 'succeed with the existing queue if there is one (exit 0; a warning if its settings differ)')
    .addHelpText(
      'after',
      examples(
        'discue queue create orders --schema order.schema.json',
        'discue queue create audit --retention 30d',
        'discue queue create orders --if-missing      # idempotent, for CI',
      ),
    )
    .action(
      action(async (ctx, [name], opts) => {
        const params = {
          name: validateQueueName(name),
          ...(opts.schema !== undefined && { schema: await readSchema(String(opts.schema)) }),
          ...(opts.retention !== undefined && { retentionMs: parseDuration(String(opts.retention), 'retention') }),
          ...(opts.maxMessages !== undefined && { maxMessages: parseCount(String(opts.maxMessages)) }),
        };
        const client = await ctx.connect();
        let info: QueueInfo;
        try {
          info = await client.request('queue.create', params);
        } catch (err) {
          if (!(opts.ifMissing && err instanceof DiscueError && err.code === 'QUEUE_EXISTS')) throw err;
          const existing = await client.request('queue.get', { name: params.name });
          // Exit 0 all the same: the queue is there, which is what a set-up
          // script asks for; changing it is `queue update`'s job, not a side effect.
          const differences = queueDifferences(existing, params);
          if (differences.length > 0) {
            ctx.warn(`queue ${existing.name} exists with other settings (left unchanged): ${differences.join('; ')}; \`discue queue update\` changes them`);
          }
          if (ctx.json) ctx.printJson(existing);
          else ctx.done(`queue ${existing.name} already exists (${plural(existing.messages, 'message')})`);
          return EXIT.OK;
        }
        if (ctx.json) ctx.printJson(info);
        else ctx.done(`created queue ${info.name}`);
        return EXIT.OK;
      }),
    );

  queue
    .command('list')
    .alias('ls')
    .description('list queues with their message counts')
    .addHelpText(
      'after',
      examples('discue queue list', 'discue queue list --json | jq \'.[].name\'', 'discue queue list -q                      # names only', 'discue queue list --fields name,messages'),
    )
    .option('--fields <list>', `print only these fields (${QUEUE_FIELDS.join(',')})`)
    .action(
      action(async (ctx, _args, opts) => {
        const client = await ctx.connect();
        const queues = await client.request('queue.list', {});
        // On a list, -q is the names alone (like `docker ps -q`); --fields picks, for the table and JSON alike.
        if (ctx.quiet) {
          if (queues.length > 0) ctx.print(queues.map((q) => q.name).join('\n'));
          return EXIT.OK;
        }
        if (opts.fields !== undefined) {
          const chosen = listFields(String(opts.fields), QUEUE_FIELDS, queues, QUEUE_COLUMNS);
          if (ctx.json) ctx.printJson(queues.map((q) => pick(q, chosen)));
          else if (queues.length > 0) ctx.print(fieldsTable(queues, chosen));
          return EXIT.OK;
        }
        if (ctx.json) {
          ctx.printJson(queues);
        } else if (queues.length === 0) {
          ctx.note('no queues yet: create one with `discue queue create NAME`');
        } else {
          ctx.print(
            table(
              ['NAME', 'MESSAGES', 'SIZE', 'RETENTION', 'MAX', 'SCHEMA', 'LAST PUBLISHED'],
              queues.map((q) => [
                ctx.colors.bold(q.name),
                String(q.messages),
                bytes(q.bytes),
                q.retentionMs ? formatDuration(q.retentionMs) : '-',
                q.maxMessages ? String(q.maxMessages) : '-',
                q.schema ? 'yes' : '-',
                ago(q.lastPublishedAt),
              ]),
            ),
          );
        }
        return EXIT.OK;
      }),
    );

  queue
    .command('show')
    .description('show one queue')
    .addHelpText('after', examples('discue queue show orders', 'discue queue show orders --json'))
    .addArgument(declareValue(new Argument('<name>'), { kind: QUEUES }))
    .action(
      action(async (ctx, [name]) => {
        const client = await ctx.connect();
        const info = await client.request('queue.get', { name: validateQueueName(name) });
        if (ctx.json) ctx.printJson(info);
        else ctx.print(describe(ctx, info));
        return EXIT.OK;
      }),
    );

  queue
    .command('update')
    .description('change a queue’s schema, retention or size limit')
    .addHelpText(
      'after',
      examples(
        'discue queue update orders --retention 7d',
        'discue queue update orders --max-messages none',
        'discue queue update orders --schema order.schema.json',
        'discue queue update orders --no-schema',
      ),
    )
    .addArgument(declareValue(new Argument('<name>'), { kind: QUEUES }))
    .addOption(declareValue(new Option('--schema <file>', 'replace the JSON Schema'), { kind: FILES }))
    .option('--no-schema', 'remove the JSON Schema')
    .option('--retention <duration>', 'new age limit, or "none"')
    .option('--max-messages <n>', 'new count limit, or "none"')
    .action(
      action(async (ctx, [name], opts) => {
        const params: {
          name: string;
          schema?: Record<string, unknown> | null;
          retentionMs?: number | null;
          maxMessages?: number | null;
        } = { name: validateQueueName(name) };
        if (opts.schema === false) params.schema = null;
        else if (typeof opts.schema === 'string') params.schema = await readSchema(opts.schema);
        if (opts.retention !== undefined) {
          params.retentionMs = opts.retention === 'none' ? null : parseDuration(String(opts.retention), 'retention');
        }
        if (opts.maxMessages !== undefined) {
          params.maxMessages = opts.maxMessages === 'none' ? null : parseCount(String(opts.maxMessages));
        }
        if (Object.keys(params).length === 1) {
          throw new DiscueError('USAGE', 'nothing to update: give --schema, --no-schema, --retention or --max-messages');
        }
        const client = await ctx.connect();
        const info = await client.request('queue.update', params);
        if (ctx.json) ctx.printJson(info);
        else ctx.done(`updated queue ${info.name}`);
        return EXIT.OK;
      }),
    );

  queue
    .command('delete')
    .alias('rm')
    .description('delete a queue (refused while it holds messages, unless --force)')
    .addHelpText(
      'after',
      examples(
        'discue queue delete orders                 # only if empty (else exit 5)',
        'discue queue delete orders --force         # asks first on a terminal',
        'discue queue delete orders --force --yes   # does not ask',
      ),
    )
    .addArgument(declareValue(new Argument('<name>'), { kind: QUEUES }))
    .option('--force', 'delete it with its messages')
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(
      action(async (ctx, [name], opts) => {
        const client = await ctx.connect();
        if (opts.force === true && opts.yes !== true) await confirmDeletion(client, validateQueueName(name), 'and the queue');
        const result = await client.request('queue.delete', { name: validateQueueName(name), force: opts.force === true });
        if (ctx.json) ctx.printJson(result);
        else ctx.done(`deleted queue ${result.name}${result.deleted ? ` and its ${plural(result.deleted, 'message')}` : ''}`);
        return EXIT.OK;
      }),
    );

  queue
    .command('purge')
    .description('remove every message of a queue, keep the queue')
    .addHelpText('after', examples('discue queue purge orders', 'discue queue purge orders --yes          # no question on a terminal'))
    .addArgument(declareValue(new Argument('<name>'), { kind: QUEUES }))
    .option('-y, --yes', 'do not ask for confirmation on a terminal')
    .action(
      action(async (ctx, [name], opts) => {
        const client = await ctx.connect();
        if (opts.yes !== true) await confirmDeletion(client, validateQueueName(name), '');
        const result = await client.request('queue.purge', { name: validateQueueName(name) });
        if (ctx.json) ctx.printJson(result);
        else ctx.done(`purged ${plural(result.deleted, 'message')} from ${result.name}`);
        return EXIT.OK;
      }),
    );

  queue
    .command('rename')
    .description('give a queue a new name; its messages, listeners and pending deliveries go with it')
    .addHelpText(
      'after',
      examples(
        'discue queue rename orders orders.v1',
        'discue queue rename orders orders.v1 --json',
      ),
    )
    .addArgument(declareValue(new Argument('<name>', 'the queue now'), { kind: QUEUES }))
    .argument('<new-name>', 'its new name: 1-64 characters of a-z A-Z 0-9 . _ - (exit 5 if taken)')
    .action(
      action(async (ctx, [name, to]) => {
        const params = { name: validateQueueName(name), to: validateQueueName(to) };
        const client = await ctx.connect();
        const info = await client.request('queue.rename', params);
        if (ctx.json) ctx.printJson(info);
        else ctx.done(`renamed queue ${params.name} to ${info.name}`);
        return EXIT.OK;
      }),
    );
}

function queueDifferences(existing: QueueInfo, given: { schema?: Record<string, unknown>; retentionMs?: number; maxMessages?: number }): string[] {
  const differences: string[] = [];
  if (given.retentionMs !== undefined && existing.retentionMs !== given.retentionMs) {
    differences.push(`retention is ${existing.retentionMs ? formatDuration(existing.retentionMs) : 'forever'}, given ${formatDuration(given.retentionMs)}`);
  }
  if (given.maxMessages !== undefined && existing.maxMessages !== given.maxMessages) {
    differences.push(`max messages is ${existing.maxMessages ?? 'unlimited'}, given ${given.maxMessages}`);
  }
  if (given.schema !== undefined && JSON.stringify(existing.schema) !== JSON.stringify(given.schema)) {
    differences.push(existing.schema ? 'the schema differs' : 'it has no schema');
  }
  return differences;
}

/**
 * On a terminal (stdin and stderr), asks before messages are deleted; a
 * script (stdin not a terminal) is never asked, as before. "n" or no answer
 * stops with ABORTED and nothing deleted.
 */
async function confirmDeletion(client: Awaited<ReturnType<Context['connect']>>, name: string, more: string): Promise<void> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return;
  const { messages } = await client.request('queue.get', { name });
  if (messages === 0) return;
  await confirm(
    `Delete ${messages.toLocaleString('en-US')} message${messages === 1 ? '' : 's'} of ${name}${more ? ` ${more}` : ''}? [y/N] `,
    `nothing deleted: ${name} keeps its messages (--yes skips the question)`,
  );
}

function describe(ctx: Context, q: QueueInfo): string {
  return fields([
    ['name', ctx.colors.bold(q.name)],
    ['created', q.createdAt],
    ['messages', String(q.messages)],
    ['size', bytes(q.bytes)],
    ['first id', q.firstId ?? '-'],
    ['last id', q.lastId ?? '-'],
    ['last published', q.lastPublishedAt ? `${q.lastPublishedAt} (${ago(q.lastPublishedAt)})` : '-'],
    ['retention', q.retentionMs ? formatDuration(q.retentionMs) : 'forever'],
    ['max messages', q.maxMessages ? String(q.maxMessages) : 'unlimited'],
    ['schema', q.schema ? JSON.stringify(q.schema) : 'none'],
  ]);
}

async function readSchema(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    // Read no more than a request can carry (one byte more tells it is
    // over): `--schema /dev/zero` (or a log file given by mistake) was read
    // to Node's string limit, 512 MB, first.
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of createReadStream(file, { end: MAX_FRAME_BYTES }) as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
    }
    if (length > MAX_FRAME_BYTES) {
      throw new DiscueError('INVALID_SCHEMA', `schema file ${file} is over ${MAX_FRAME_BYTES / 1024 / 1024} MiB, more than a request to the daemon may carry`);
    }
    text = Buffer.concat(chunks, length).toString('utf8');
  } catch (err) {
    if (err instanceof DiscueError) throw err;
    throw new DiscueError('INVALID_SCHEMA', `cannot read schema file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (err) {
    throw new DiscueError('INVALID_SCHEMA', `schema file ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new DiscueError('INVALID_SCHEMA', `schema file ${file} must hold a JSON object`);
  }
  return schema as Record<string, unknown>;
}

/** What `queue list --fields` documents (a field a queue has is accepted too). */
const QUEUE_FIELDS = ['name', 'messages', 'bytes', 'retentionMs', 'maxMessages', 'schema', 'createdAt', 'firstId', 'lastId', 'lastPublishedAt', 'stats'];
/** The table's columns that are not fields, and where their values come from. */
const QUEUE_COLUMNS = { size: 'bytes', retention: 'retentionMs', max: 'maxMessages', last: 'lastPublishedAt', published: 'lastPublishedAt' };

export function parseCount(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new DiscueError('INVALID_ARGUMENT', `expected a whole number of at least 1, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}
