/**
 * `discue export` and `discue import`: a home as NDJSON, to move it to
 * another store (a LevelDB home to a NATS cluster, or back). Streamed both
 * ways, a page or a batch at a time: constant memory for any backlog.
 *
 * The file, one JSON object a line, in the order import needs:
 *   {"type":"queue","name","schema"?,"retentionMs"?,"maxMessages"?}     every queue first
 *   {"type":"message","queue","id","name"?,"data","publishedAt"}       each queue's messages, oldest first
 *   {"type":"listener",...ListenerInfo with its secret,"after"?}       HTTP and command listeners last
 * `after` maps a queue to the last message the listener settled in order,
 * where the exporting store names positions by message id (LevelDB).
 */
import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { isMessageId } from '../../protocol/ids.js';
import type { ListenerAddParams } from '../../protocol/requests.js';
import type { Envelope, ListenerInfo } from '../../protocol/wire.js';
import type { DiscueClient } from '../../client/client.js';
import { MessagePager } from '../../client/pages.js';
import { action, examples } from '../action.js';
import type { Context } from '../context.js';
import { plural } from '../format.js';
import { strictLines } from '../lines.js';
import { MAX_FRAME_BYTES } from '../../protocol/frames.js';

/** Messages per page read and per import request. */
const BATCH = 1_000;

type Line =
  | { type: 'queue'; name: string; schema?: Record<string, unknown>; retentionMs?: number; maxMessages?: number }
  | ({ type: 'message' } & Envelope)
  | ({ type: 'listener'; after?: Record<string, string> } & ListenerInfo);

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write every queue (with its settings), message and listener as NDJSON to stdout, to import elsewhere')
    .addHelpText(
      'after',
      examples(
        'discue export > home.ndjson',
        'DISCUE_STORE=nats://10.0.0.5:4222 DISCUE_HOME=/tmp/move discue import < home.ndjson',
      ),
    )
    .action(action(async (ctx) => exportHome(ctx)));
}

export function registerImport(program: Command): void {
  program
    .command('import')
    .description('read what `discue export` wrote from stdin: make its queues (which must not exist yet), messages (ids kept) and listeners')
    .addHelpText('after', examples('discue import < home.ndjson', 'discue export | DISCUE_HOME=~/other discue import'))
    .action(action(async (ctx) => importHome(ctx)));
}

async function write(line: Line): Promise<void> {
  // Waits for a full pipe: a large export is never held in memory.
  if (!process.stdout.write(JSON.stringify(line) + '\n')) await new Promise((resolve) => process.stdout.once('drain', resolve));
}

async function exportHome(ctx: Context): Promise<number> {
  const client = await ctx.connect();
  const queues = await client.request('queue.list', {});
  let messages = 0;
  for (const q of queues) {
    const line: Line = { type: 'queue', name: q.name };
    if (q.schema !== undefined) line.schema = q.schema;
    if (q.retentionMs !== undefined) line.retentionMs = q.retentionMs;
    if (q.maxMessages !== undefined) line.maxMessages = q.maxMessages;
    await write(line);
  }
  for (const q of queues) {
    const pager = new MessagePager(client, q.name);
    for (;;) {
      const page = await pager.next(BATCH);
      if (page.messages.length === 0) break;
      for (const m of page.messages) await write({ type: 'message', ...m });
      messages += page.messages.length;
    }
  }
  let listeners = 0;
  for (const l of await client.request('listener.list', {})) {
    // A foreground `listen` belongs to the process that runs it: not carried.
    if (l.kind === 'stream') continue;
    const full = await client.request('listener.get', { ref: l.id, secret: true });
    const { progress, stats: _stats, hasSecret: _hasSecret, connected: _connected, ...rest } = full;
    const after: Record<string, string> = {};
    for (const p of progress ?? []) if (p.cursor !== undefined && isMessageId(p.cursor)) after[p.queue] = p.cursor;
    await write(Object.keys(after).length > 0 ? { type: 'listener', ...rest, after } : { type: 'listener', ...rest });
    listeners++;
  }
  ctx.note(`exported ${plural(queues.length, 'queue')}, ${plural(messages, 'message')}, ${plural(listeners, 'listener')}`);
  return EXIT.OK;
}

async function importHome(ctx: Context): Promise<number> {
  const client = await ctx.connect();
  const counts = { queues: 0, messages: 0, listeners: 0 };
  let batch: Envelope[] = [];
  let batchQueue = '';
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await client.request('messages.import', { queue: batchQueue, messages: batch });
    counts.messages += batch.length;
    batch = [];
  };
  let n = 0;
  // Strict and bounded, as publish reads stdin: readline stored invalid UTF-8
  // as U+FFFD and buffered a line without newline to the memory limit.
  const tooLong = () =>
    new DiscueError('MESSAGE_TOO_LARGE', `line ${n + 1}: over ${MAX_FRAME_BYTES} bytes, longer than any line \`discue export\` writes`);
  for await (const text of strictLines(process.stdin, tooLong)) {
    n++;
    if (typeof text !== 'string') {
      throw new DiscueError('INVALID_MESSAGE', `line ${n}: not valid UTF-8; discue stores text exactly as sent, so convert it first (e.g. iconv -t UTF-8)`);
    }
    if (text.trim() === '') continue;
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch (err) {
      throw new DiscueError('INVALID_JSON', `line ${n} is not JSON: ${(err as Error).message}`);
    }
    // `null` or `[]` ended as INTERNAL (a TypeError reading .type).
    if (typeof line !== 'object' || line === null || Array.isArray(line)) {
      throw new DiscueError('INVALID_ARGUMENT', `line ${n}: not a JSON object (not written by \`discue export\`)`);
    }
    // A batch's error is its own, not this line's: flushed before the try.
    if (line.type !== 'message' || line.queue !== batchQueue || batch.length >= BATCH) await flush();
    try {
      if (line.type === 'queue') {
        const { type: _type, ...params } = line;
        await client.request('queue.create', params);
        counts.queues++;
      } else if (line.type === 'message') {
        batchQueue = line.queue;
        const { type: _type, ...envelope } = line;
        batch.push(envelope);
      } else if (line.type === 'listener') {
        await importListener(client, line);
        counts.listeners++;
      } else {
        throw new DiscueError('INVALID_ARGUMENT', `unknown type ${JSON.stringify((line as { type?: unknown }).type)} (not written by \`discue export\`)`);
      }
    } catch (err) {
      // In a file of a million lines, the error says which one.
      if (err instanceof DiscueError) throw new DiscueError(err.code, `line ${n}: ${err.message}`, { details: err.details });
      throw err;
    }
  }
  await flush();
  if (ctx.json) ctx.printJson({ imported: counts });
  else ctx.done(`imported ${plural(counts.queues, 'queue')}, ${plural(counts.messages, 'message')}, ${plural(counts.listeners, 'listener')}`);
  return EXIT.OK;
}

/** A listener as exported: same settings, secret and name; it starts after its exported position (else at the end). */
async function importListener(client: DiscueClient, l: Extract<Line, { type: 'listener' }>): Promise<void> {
  // Export writes these two kinds only. Another kind was skipped and still
  // counted as imported; an exec line without its command ended as INTERNAL.
  if (l.kind !== 'http' && l.kind !== 'exec') {
    throw new DiscueError('INVALID_ARGUMENT', `listener kind ${JSON.stringify(l.kind)} is not http or exec (not written by \`discue export\`)`);
  }
  if (l.kind === 'exec' && !(Array.isArray(l.command) && l.command.length > 0 && l.command.every((w) => typeof w === 'string'))) {
    throw new DiscueError('INVALID_ARGUMENT', 'a command listener needs "command", a non-empty array of strings');
  }
  const params: ListenerAddParams = {
    kind: l.kind,
    queues: l.queues,
    timeoutMs: l.timeoutMs,
    maxAttempts: l.maxAttempts,
    retryDelayMs: l.retryDelayMs,
    concurrency: l.concurrency,
    from: 'new',
    afterIds: l.after ?? {},
  };
  if (l.name !== undefined) params.name = l.name;
  if (l.kind === 'http') {
    params.url = l.url!;
    if (l.headers !== undefined) params.headers = l.headers;
    if (l.secret !== undefined) params.secret = l.secret;
  } else {
    params.command = l.shell ? l.command![0]! : l.command!.map(quote).join(' ');
    if (l.shell) params.shell = true;
    if (l.cwd !== undefined) params.cwd = l.cwd;
  }
  if (l.state === 'paused') params.paused = true;
  await client.request('listener.add', params);
}

/** One argv word as the daemon's splitter reads it back. */
function quote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
