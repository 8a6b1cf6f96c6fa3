import { Argument } from 'commander';
import type { Command } from 'commander';
import type { DiscueClient } from '../../client/client.js';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { parseDuration } from '../../client/duration.js';
import { MAX_DATA_BYTES, parseMessage, validateMessage, validateQueueName } from '../../protocol/validate.js';
import type { MessageInput, PublishResult, WaitOutcome } from '../../protocol/wire.js';
import { MAX_FRAME_BYTES } from '../../protocol/frames.js';
import { action, examples } from '../action.js';
import { QUEUES, declareValue } from '../values.js';
import { plural } from '../format.js';
import type { Context } from '../context.js';
import { healthText } from '../health.js';
import { Progress } from '../progress.js';
import { strictLines } from '../lines.js';

/** A batch from stdin goes to the daemon when it reaches either bound. */
const BATCH_MESSAGES = 1000;
const BATCH_BYTES = 1024 * 1024;

export function registerPublish(program: Command): void {
  program
    .command('publish')
    .alias('pub')
    .description('store a message in a queue; prints its id once it is durable on disk')
    .addArgument(declareValue(new Argument('<queue>', 'queue to publish to'), { kind: QUEUES }))
    .argument('[message]', 'the message as JSON: {"data":"...","name":"...","key":"..."}')
    .option('-d, --data <text>', 'publish this text as data (instead of a JSON message)')
    .option('-n, --name <name>', 'event name, with --data')
    .option('-k, --key <key>', 'idempotency key: publishing the same key to the queue again within 10 minutes stores nothing and prints the first id')
    .option('--wait', 'also wait until every active listener of the queue has it; exit 1 if a delivery died or a receiver refused it (410 Gone)')
    .option('--wait-timeout <duration>', 'with --wait: give up after this long (exit 124)', '30s')
    .addHelpText(
      'after',
      examples(
        `discue publish orders '{"data":"Order shipped","name":"order.shipped"}'`,
        `discue publish orders --data 'Order shipped' --name order.shipped`,
        `printf '%s\\n' '{"data":"a"}' '{"data":"b"}' | discue publish orders   # NDJSON batch`,
        `discue publish orders --data '{"id":1}' --json                         # {"queue":..,"ids":[..]}`,
        `discue publish orders --data 'Order 1001 shipped' --key order-1001-shipped   # safe to retry`,
      ),
    )
    .action(
      action(async (ctx, [queueArg, messageArg], opts) => {
        const queue = validateQueueName(queueArg);
        const data = opts.data as string | undefined;
        const name = opts.name as string | undefined;
        const key = opts.key as string | undefined;
        if (messageArg !== undefined && data !== undefined) {
          throw new DiscueError('USAGE', 'give the message either as a JSON argument or with --data, not both');
        }
        if (name !== undefined && data === undefined) {
          throw new DiscueError('USAGE', '--name goes with --data; in a JSON message, set "name" in the JSON');
        }
        let message: MessageInput | undefined;
        if (messageArg !== undefined) message = parseMessageArgument(String(messageArg), queue);
        else if (data !== undefined) message = validateMessage(name === undefined ? { data } : { data, name });
        if (key !== undefined) {
          if (message === undefined) throw new DiscueError('USAGE', '--key goes with one message; on stdin, give each NDJSON line its own "key"');
          if (message.key !== undefined) throw new DiscueError('USAGE', 'the message has a "key" already; give it either in the JSON or with --key');
          message = validateMessage({ ...message, key });
        }
        if (message !== undefined) {
          const client = await ctx.connect();
          if (opts.wait) {
            const waitTimeoutMs = parseDuration(String(opts.waitTimeout), 'wait timeout');
            const result = await client.request('publish', { queue, messages: [message], wait: true, waitTimeoutMs });
            return reportWait(ctx, result);
          }
          const result = await client.publish(queue, message);
          if (ctx.json) ctx.printJson(withDuplicates({ queue, count: 1, ids: result.ids }, result.duplicates));
          else {
            ctx.print(result.ids[0]!);
            if (result.duplicates) ctx.note(`(key ${JSON.stringify(message.key)} was published before: nothing stored, this is the first message's id)`);
          }
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
  const duplicates: number[] = [];
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
      for (const index of result.duplicates ?? []) duplicates.push(ids.length + index);
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

  // Ctrl-C (in a pipeline it reaches every process of it): stop reading, but
  // let the batch already sent be answered and its ids printed. Killed at
  // once, the CLI left a stored batch whose ids nobody saw. A second Ctrl-C
  // ends it at once.
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(EXIT.INTERRUPTED);
    interrupted = true;
    process.stdin.destroy();
  };
  process.on('SIGINT', onSigint);
  try {
    try {
      await readBatches();
    } catch (err) {
      if (!interrupted) throw err;
    }
    if (interrupted) {
      throw new DiscueError(
        'INTERRUPTED',
        ids.length > 0
          ? `interrupted: ${plural(ids.length, 'message')} stored, every id printed; what was read after them was not sent`
          : 'interrupted: nothing was stored',
        { details: { stored: ids.length } },
      );
    }
    progress.finish(ids.length);
  } catch (err) {
    progress.clear();
    // What was stored is data: --json users get its ids on stdout too.
    if (ctx.json && ids.length > 0) ctx.printJson(withDuplicates({ queue, count: ids.length, ids }, duplicates));
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (ids.length === 0) throw new DiscueError('USAGE', 'no messages on stdin');
  if (ctx.json) ctx.printJson(withDuplicates({ queue, count: ids.length, ids }, duplicates));
  else if (duplicates.length > 0) ctx.note(`${plural(duplicates.length, 'message')} had a key published before: not stored again, ${duplicates.length === 1 ? 'its' : 'their'} first id printed`);
  return EXIT.OK;

  async function readBatches(): Promise<void> {
    let lineNo = 0;
    const tooLong = () =>
      new DiscueError(
        'MESSAGE_TOO_LARGE',
        `line ${lineNo + 1}: over ${MAX_FRAME_BYTES} bytes, more than any message can be (its "data" may have ${MAX_DATA_BYTES} bytes)${storedNote(ids.length)}`,
        { details: { line: lineNo + 1, stored: ids.length } },
      );
    for await (const line of strictLines(process.stdin, tooLong)) {
      // Interrupted: what is read now is not sent (nor a last line cut short by the end of input).
      if (interrupted) return;
      lineNo++;
      if (typeof line !== 'string') {
        throw new DiscueError(
          'INVALID_MESSAGE',
          `line ${lineNo}: not valid UTF-8; discue stores text exactly as sent, so convert it first (e.g. iconv -t UTF-8)${storedNote(ids.length)}`,
          { details: { line: lineNo, stored: ids.length } },
        );
      }
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
    if (!interrupted) await flush();
  }
}

/** `duplicates` (0-based positions) appears in --json output only when there are some. */
function withDuplicates<T extends object>(output: T, duplicates: number[] | undefined): T & { duplicates?: number[] } {
  return duplicates !== undefined && duplicates.length > 0 ? { ...output, duplicates } : output;
}

/**
 * The JSON argument. When it is not JSON, the error shows what arrived and
 * how to pass it: a shell eats unescaped double quotes, so
 * `"{"data":"x"}"` arrives as `{data:x}`; and plain text belongs in --data.
 */
function parseMessageArgument(text: string, queue: string): MessageInput {
  try {
    return parseMessage(text);
  } catch (err) {
    if (!(err instanceof DiscueError) || err.code !== 'INVALID_JSON') throw err;
    const arrived = text.length > 120 ? `${text.slice(0, 119)}…` : text;
    const hint = /^\s*[{[]/.test(text)
      ? `it arrived as ${arrived}; if the shell removed its double quotes, put the JSON in single quotes ` +
        `(discue publish ${queue} '{"data":"..."}'), or use --data TEXT`
      : `to publish plain text, use --data: discue publish ${queue} --data ${shellQuote(text)}`;
    throw new DiscueError('INVALID_JSON', `the message argument is ${err.message}: ${hint}`, { cause: err });
  }
}

/** A single-quoted shell word, for commands the user can copy. */
function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function storedNote(stored: number): string {
  return stored > 0 ? ` (the ${plural(stored, 'message')} before it ${stored === 1 ? 'was' : 'were'} stored)` : ' (nothing was stored)';
}

/** Prints the id, then what each listener did; the exit code says whether all got it. */
function reportWait(ctx: Context, result: PublishResult): number {
  const outcomes = result.deliveries ?? [];
  const failed = outcomes.filter((o) => o.state === 'dead' || o.state === 'refused');
  const pending = outcomes.filter((o) => o.state === 'pending');
  // Why a listener is late, when it is failing: "hook: 3 failed attempts, ECONNREFUSED, next retry in 8s".
  const why = (o: WaitOutcome) => (o.health && o.health.consecutiveFailures > 0 ? `: ${healthText(o.health)}` : '');
  if (ctx.json) {
    ctx.printJson(withDuplicates({ queue: result.queue, count: result.ids.length, ids: result.ids, deliveries: outcomes }, result.duplicates));
  } else {
    ctx.print(result.ids.join('\n'));
    for (const o of outcomes) {
      const detail =
        o.state === 'refused'
          ? ` (${o.reason ?? 'the receiver answered 410 Gone'}; listener disabled)`
          : o.state === 'pending'
            ? why(o)
            : o.state === 'skipped'
              ? ' (its filters take none of these messages: not sent)'
              : '';
      ctx.note(`  ${o.name ?? o.listener}: ${o.state}${detail}`);
    }
    if (outcomes.length === 0) ctx.note('  (no active listeners on this queue)');
  }
  if (pending.length > 0) {
    const names = pending.map((o) => `${o.name ?? o.listener}${why(o)}`).join('; ');
    waitError(ctx, 'TIMEOUT', `${plural(pending.length, 'listener')} did not get the message in time: ${names}`);
    return EXIT.TIMEOUT;
  }
  if (failed.length > 0) {
    const names = failed.map((o) => `${o.name ?? o.listener} (${o.state})`).join(', ');
    waitError(ctx, 'DELIVERY_FAILED', `the message was not delivered to ${names}`);
    return EXIT.FAILURE;
  }
  return EXIT.OK;
}

/** The wait's verdict on stderr, in the shape every other error takes (JSON with --json). */
function waitError(ctx: Context, code: 'TIMEOUT' | 'DELIVERY_FAILED', message: string): void {
  process.stderr.write(ctx.json ? `${JSON.stringify({ error: { code, message } })}\n` : `error: ${message} [${code}]\n`);
}
