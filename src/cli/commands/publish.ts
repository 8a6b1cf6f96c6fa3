import type { Command } from 'commander';
import type { DiscueClient } from '../../client/client.js';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { parseDuration, parseMessage, validateMessage, validateQueueName } from '../../protocol/messages.js';
import type { MessageInput, PublishResult, WaitOutcome } from '../../protocol/messages.js';
import { action, examples } from '../action.js';
import type { Context } from '../context.js';
import { healthText } from '../health.js';
import { Progress } from '../progress.js';

/** A batch from stdin goes to the daemon when it reaches either bound. */
const BATCH_MESSAGES = 1000;
const BATCH_BYTES = 1024 * 1024;

export function registerPublish(program: Command): void {
  program
    .command('publish')
    .alias('pub')
    .description('store a message in a queue; prints its id once it is durable on disk')
    .argument('<queue>', 'queue to publish to')
    .argument('[message]', 'the message as JSON: {"data":"...","name":"..."}')
    .option('-d, --data <text>', 'publish this text as data (instead of a JSON message)')
    .option('-n, --name <name>', 'event name, with --data')
    .option('--wait', 'also wait until every active listener of the queue has it; exit 1 if a delivery died')
    .option('--wait-timeout <duration>', 'with --wait: give up after this long (exit 124)', '30s')
    .addHelpText(
      'after',
      examples(
        `discue publish orders '{"data":"Order shipped","name":"order.shipped"}'`,
        `discue publish orders --data 'Order shipped' --name order.shipped`,
        `printf '%s\\n' '{"data":"a"}' '{"data":"b"}' | discue publish orders   # NDJSON batch`,
        `discue publish orders --data '{"id":1}' --json                         # {"queue":..,"ids":[..]}`,
      ),
    )
    .action(
      action(async (ctx, [queueArg, messageArg], opts) => {
        const queue = validateQueueName(queueArg);
        const data = opts.data as string | undefined;
        const name = opts.name as string | undefined;
        if (messageArg !== undefined && data !== undefined) {
          throw new DiscueError('USAGE', 'give the message either as a JSON argument or with --data, not both');
        }
        if (name !== undefined && data === undefined) {
          throw new DiscueError('USAGE', '--name goes with --data; in a JSON message, set "name" in the JSON');
        }
        let message: MessageInput | undefined;
        if (messageArg !== undefined) message = parseMessage(String(messageArg));
        else if (data !== undefined) message = validateMessage(name === undefined ? { data } : { data, name });
        if (message !== undefined) {
          const client = await ctx.connect();
          if (opts.wait) {
            const waitTimeoutMs = parseDuration(String(opts.waitTimeout), 'wait timeout');
            const result = await client.request('publish', { queue, messages: [message], wait: true, waitTimeoutMs });
            return reportWait(ctx, result);
          }
          const result = await client.publish(queue, message);
          if (ctx.json) ctx.printJson({ queue, count: 1, ids: result.ids });
          else ctx.print(result.ids[0]!);
          return EXIT.OK;
        }
        if (opts.wait) throw new DiscueError('USAGE', '--wait works with one message (JSON argument or --data)');
        if (process.stdin.isTTY) {
          throw new DiscueError('USAGE', 'no message: give one as JSON, use --data TEXT, or pipe NDJSON on stdin');
        }
        return publishStream(ctx, queue);
      }),
    );
}

/**
 * NDJSON on stdin, one message a line, sent in batches. Each batch is stored
 * all or nothing; on a bad line, publishing stops there, and the ids stored
 * before it are still printed.
 */
async function publishStream(ctx: Context, queue: string): Promise<number> {
  const ids: string[] = [];
  let client: DiscueClient | undefined;
  let batch: MessageInput[] = [];
  let batchLines: number[] = [];
  let batchBytes = 0;
  const progress = new Progress('published', process.stderr.isTTY === true && !ctx.quiet);

  const flush = async () => {
    if (batch.length === 0) return;
    client ??= await ctx.connect();
    try {
      const result = await client.publish(queue, batch);
      for (const id of result.ids) ids.push(id);
      if (!ctx.json) {
        // Ids and the progress line may share a terminal: take the line down while ids print.
        if (process.stdout.isTTY) progress.clear(true);
        ctx.print(result.ids.join('\n'));
      }
      progress.update(ids.length);
    } catch (err) {
      if (err instanceof DiscueError) {
        const { index, errors } = (err.details ?? {}) as { index?: number; errors?: unknown };
        const line = index === undefined ? undefined : batchLines[index];
        const where = line === undefined ? '' : `line ${line}: `;
        // Keep the schema errors: --json users read them from details.
        const details = errors === undefined ? { line, stored: ids.length } : { line, stored: ids.length, errors };
        throw new DiscueError(err.code, `${where}${err.message.replace(/^message( \d+)?: /, '')}${storedNote(ids.length)}`, {
          details,
        });
      }
      throw err;
    }
    batch = [];
    batchLines = [];
    batchBytes = 0;
  };

  try {
    await readBatches();
    progress.finish(ids.length);
  } catch (err) {
    progress.clear();
    // What was stored is data: --json users get its ids on stdout too.
    if (ctx.json && ids.length > 0) ctx.printJson({ queue, count: ids.length, ids });
    throw err;
  }
  if (ids.length === 0) throw new DiscueError('USAGE', 'no messages on stdin');
  if (ctx.json) ctx.printJson({ queue, count: ids.length, ids });
  return EXIT.OK;

  async function readBatches(): Promise<void> {
    // Loaded only for stdin batches: single publishes are the start-up-critical path.
    const { createInterface } = await import('node:readline');
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let message: MessageInput;
      try {
        message = parseMessage(line, `line ${lineNo}`);
      } catch (err) {
        if (err instanceof DiscueError) {
          throw new DiscueError(err.code, err.message + storedNote(ids.length), { details: { line: lineNo, stored: ids.length } });
        }
        throw err;
      }
      batch.push(message);
      batchLines.push(lineNo);
      batchBytes += line.length;
      if (batch.length >= BATCH_MESSAGES || batchBytes >= BATCH_BYTES) await flush();
    }
    await flush();
  }
}

function storedNote(stored: number): string {
  return stored > 0 ? ` (the ${stored} message(s) before it were stored)` : ' (nothing was stored)';
}

/** Prints the id, then what each listener did; the exit code says whether all got it. */
function reportWait(ctx: Context, result: PublishResult): number {
  const outcomes = result.deliveries ?? [];
  const failed = outcomes.filter((o) => o.state === 'dead' || o.state === 'refused');
  const pending = outcomes.filter((o) => o.state === 'pending');
  // Why a listener is late, when it is failing: "hook: 3 failed attempts, ECONNREFUSED, next retry in 8s".
  const why = (o: WaitOutcome) => (o.health && o.health.consecutiveFailures > 0 ? `: ${healthText(o.health)}` : '');
  if (ctx.json) ctx.printJson({ queue: result.queue, count: result.ids.length, ids: result.ids, deliveries: outcomes });
  else {
    ctx.print(result.ids.join('\n'));
    for (const o of outcomes) {
      const detail = o.state === 'refused' ? ` (${o.reason ?? 'the receiver answered 410 Gone'}; listener disabled)` : o.state === 'pending' ? why(o) : '';
      ctx.note(`  ${o.name ?? o.listener}: ${o.state}${detail}`);
    }
    if (outcomes.length === 0) ctx.note('  (no active listeners on this queue)');
  }
  if (pending.length > 0) {
    const names = pending.map((o) => `${o.name ?? o.listener}${why(o)}`).join('; ');
    process.stderr.write(`error: ${pending.length} listener(s) did not get the message in time: ${names} [TIMEOUT]\n`);
    return EXIT.TIMEOUT;
  }
  if (failed.length > 0) {
    const names = failed.map((o) => `${o.name ?? o.listener} (${o.state})`).join(', ');
    process.stderr.write(`error: the message was not delivered to ${names} [DELIVERY_FAILED]\n`);
    return EXIT.FAILURE;
  }
  return EXIT.OK;
}
