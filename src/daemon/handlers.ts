/**
 * Request handlers: one function per request type. Each checks its params
 * (they come from the socket), calls the store, and returns the result; the
 * connection turns thrown DiscueErrors into error replies.
 */
import { access, constants, stat } from 'node:fs/promises';
import { delimiter, resolve as resolvePath } from 'node:path';
import { DiscueError } from '../protocol/errors.js';
import { assertMessageId } from '../protocol/ids.js';
import { validateMessage, validateQueueName } from '../protocol/messages.js';
import type {
  DaemonStatus,
  DeliveryInfo,
  Envelope,
  DeliveryState,
  MessageInput,
  PublishResult,
  QueueInfo,
  RequestType,
} from '../protocol/messages.js';
import { splitCommand } from '../delivery/argv.js';
import type { DeliveryEngine } from '../delivery/engine.js';
import { newListenerId } from '../delivery/listeners.js';
import type { Stream, StreamOptions } from '../delivery/streams.js';
import { maskUrl } from '../delivery/redact.js';
import { generateSecret, validateSecret } from '../delivery/signature.js';
import type { ListenerRecord, Store } from '../backend/types.js';
import {
  asParams,
  nullableInt,
  optionalBoolean,
  optionalInt,
  optionalObject,
  optionalString,
  requireString,
} from './params.js';
import type { SchemaRegistry } from './schemas.js';

/** Largest batch one publish request may carry. */
export const MAX_BATCH = 10_000;
const MAX_LIST = 10_000;
const MAX_LIST_REPLY_BYTES = 8 * 1024 * 1024;
const HUNDRED_YEARS_MS = 100 * 365 * 86_400_000;

export interface HandlerContext {
  store: Store;
  engine: DeliveryEngine;
  schemas: SchemaRegistry;
  status(): DaemonStatus;
  shutdown(reason: string): void;
}

/** What a handler knows of the request it serves (streams need it). */
export interface RequestContext {
  id: number;
  /** Sends an event frame for this request (streams). */
  emit(event: unknown): void;
  /** Runs when the connection closes or the daemon starts shutting down. */
  onClose(callback: () => void): void;
  /** The streams on this connection, by request id, so their acks reach them. */
  streams: Map<number, Stream>;
}

export type Handler = (params: unknown, ctx: HandlerContext, req: RequestContext) => Promise<unknown>;

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_ATTEMPTS = 10;
const DEFAULT_RETRY_DELAY_MS = 1000;
const MAX_CONCURRENCY = 64;

export const handlers: Record<Exclude<RequestType, 'hello' | 'listen.ack'>, Handler> = {
  async 'daemon.status'(raw, ctx) {
    asParams(raw);
    return ctx.status();
  },

  async stats(raw, ctx) {
    const recent = optionalInt(asParams(raw), 'recent', 0, 200) ?? 50;
    await ctx.engine.refreshPending();
    const now = Date.now();
    return {
      at: new Date(now).toISOString(),
      daemon: ctx.status(),
      queues: (await ctx.store.listQueues()).map((q) => withQueueStats(ctx, q, now)),
      listeners: ctx.engine.listeners.list().map((l) => ctx.engine.listeners.info(l)),
      recent: ctx.engine.recent.slice(-recent).reverse(),
    };
  },

  async 'daemon.shutdown'(raw, ctx) {
    asParams(raw);
    // Reply first; the shutdown starts once this reply is on its way.
    setImmediate(() => ctx.shutdown('requested by a client'));
    return { pid: process.pid };
  },

  async 'queue.create'(raw, ctx) {
    const params = asParams(raw);
    const name = validateQueueName(params.name);
    const schema = optionalObject(params, 'schema');
    if (schema !== undefined) await ctx.schemas.compile(schema);
    const retentionMs = optionalInt(params, 'retentionMs', 1, HUNDRED_YEARS_MS);
    const maxMessages = optionalInt(params, 'maxMessages', 1, Number.MAX_SAFE_INTEGER);
    return ctx.store.createQueue({ name, schema, retentionMs, maxMessages });
  },

  async 'queue.list'(raw, ctx) {
    asParams(raw);
    const now = Date.now();
    return (await ctx.store.listQueues()).map((q) => withQueueStats(ctx, q, now));
  },

  async 'queue.get'(raw, ctx) {
    return withQueueStats(ctx, await ctx.store.getQueue(validateQueueName(asParams(raw).name)), Date.now());
  },

  async 'queue.update'(raw, ctx) {
    const params = asParams(raw);
    const name = validateQueueName(params.name);
    const schema = params.schema === null ? null : optionalObject(params, 'schema');
    if (schema) await ctx.schemas.compile(schema);
    const retentionMs = nullableInt(params, 'retentionMs', 1, HUNDRED_YEARS_MS);
    const maxMessages = nullableInt(params, 'maxMessages', 1, Number.MAX_SAFE_INTEGER);
    const info = await ctx.store.updateQueue(name, { schema, retentionMs, maxMessages });
    ctx.schemas.forget(name);
    return info;
  },

  async 'queue.delete'(raw, ctx) {
    const params = asParams(raw);
    const name = validateQueueName(params.name);
    const force = optionalBoolean(params, 'force') ?? false;
    const info = await ctx.store.getQueue(name);
    if (info.messages > 0 && !force) {
      throw new DiscueError(
        'QUEUE_NOT_EMPTY',
        `queue "${name}" holds ${info.messages} message(s); use --force to delete it with them`,
      );
    }
    const deleted = await ctx.store.deleteQueue(name);
    ctx.schemas.forget(name);
    return { name, deleted };
  },

  async 'queue.purge'(raw, ctx) {
    const name = validateQueueName(asParams(raw).name);
    return { name, deleted: await ctx.store.purgeQueue(name) };
  },

  async publish(raw, ctx) {
    const params = asParams(raw);
    const queue = validateQueueName(params.queue);
    const list = params.messages;
    if (!Array.isArray(list) || list.length === 0) {
      throw new DiscueError('INVALID_ARGUMENT', '"messages" must be a non-empty array');
    }
    if (list.length > MAX_BATCH) {
      throw new DiscueError('INVALID_ARGUMENT', `at most ${MAX_BATCH} messages per publish request`);
    }
    const config = await ctx.store.queueConfig(queue);
    const messages: MessageInput[] = new Array(list.length);
    // All or nothing: the whole batch is checked before any of it is stored.
    for (let i = 0; i < list.length; i++) {
      try {
        messages[i] = validateMessage(list[i], list.length === 1 ? 'message' : `message ${i + 1}`);
      } catch (err) {
        if (err instanceof DiscueError) throw new DiscueError(err.code, err.message, { details: { index: i } });
        throw err;
      }
    }
    if (config.schema) await ctx.schemas.check(queue, config.schema, messages.map((m) => m.data));
    const wait = optionalBoolean(params, 'wait') ?? false;
    const waitTimeoutMs = optionalInt(params, 'waitTimeoutMs', 1, HUNDRED_YEARS_MS) ?? 30_000;
    const outcome = await ctx.store.appendOnce(queue, messages);
    const { ids } = outcome;
    const result: PublishResult = { queue, ids, publishedAt: outcome.publishedAt };
    if (outcome.duplicates.length > 0) result.duplicates = outcome.duplicates;
    if (wait) result.deliveries = await ctx.engine.waitFor(queue, ids, outcome.through, waitTimeoutMs);
    return result;
  },

  async 'listener.add'(raw, ctx) {
    const params = asParams(raw);
    const kind = params.kind;
    if (kind !== 'http' && kind !== 'exec') throw new DiscueError('INVALID_ARGUMENT', 'kind must be "http" or "exec"');
    const queues = queueList(params.queues);
    if (queues.length === 0) throw new DiscueError('INVALID_ARGUMENT', 'a listener needs at least one --queue');
    for (const queue of queues) await ctx.store.queueConfig(queue); // QUEUE_NOT_FOUND early
    const name = optionalString(params, 'name');
    if (name !== undefined) validateListenerName(name);
    const from = params.from === undefined ? 'new' : params.from;
    if (from !== 'new' && from !== 'all') throw new DiscueError('INVALID_ARGUMENT', '--from takes "new" or "all"');
    const record: ListenerRecord = {
      id: newListenerId('l'),
      kind,
      queues,
      timeoutMs: optionalInt(params, 'timeoutMs', 1, 3_600_000) ?? DEFAULT_TIMEOUT_MS,
      maxAttempts: optionalInt(params, 'maxAttempts', 1, 1000) ?? DEFAULT_MAX_ATTEMPTS,
      retryDelayMs: optionalInt(params, 'retryDelayMs', 1, 3_600_000) ?? DEFAULT_RETRY_DELAY_MS,
      concurrency: optionalInt(params, 'concurrency', 1, MAX_CONCURRENCY) ?? 1,
      state: 'active',
      createdAt: new Date().toISOString(),
    };
    if (name !== undefined) record.name = name;
    if (kind === 'http') {
      record.url = validateUrl(requireString(params, 'url'));
      const headers = optionalObject(params, 'headers');
      if (headers) record.headers = validateHeaders(headers);
      const secret = optionalString(params, 'secret');
      record.secret = secret === undefined ? generateSecret() : validateSecret(secret);
    } else {
      const command = requireString(params, 'command');
      const shell = optionalBoolean(params, 'shell') ?? false;
      record.command = shell ? [command] : splitCommand(command);
      if (shell) record.shell = true;
      const cwd = optionalString(params, 'cwd');
      if (cwd !== undefined) record.cwd = cwd;
      // A shell resolves its own words (builtins, functions): only a program run directly is checked.
      if (!shell) await checkProgram(record.command[0]!, cwd ?? process.cwd());
    }
    await ctx.engine.listeners.register(record, from);
    // The generated secret is shown once, here; URL credentials only to `listener show --secret`.
    const info = ctx.engine.listeners.info(record, true);
    if (info.url !== undefined) info.url = maskUrl(info.url);
    return info;
  },

  async 'listener.list'(raw, ctx) {
    const queue = optionalString(asParams(raw), 'queue');
    const listeners = ctx.engine.listeners.list(queue);
    await ctx.engine.refreshPending(listeners);
    return listeners.map((l) => ctx.engine.listeners.info(l));
  },

  async 'listener.get'(raw, ctx) {
    const params = asParams(raw);
    const record = ctx.engine.listeners.resolve(requireString(params, 'ref'));
    await ctx.engine.refreshPending([record]);
    return ctx.engine.listeners.info(record, optionalBoolean(params, 'secret') ?? false);
  },

  async 'listener.remove'(raw, ctx) {
    const record = ctx.engine.listeners.resolve(requireString(asParams(raw), 'ref'));
    await ctx.engine.listeners.remove(record);
    return { id: record.id };
  },

  async 'listener.pause'(raw, ctx) {
    const record = ctx.engine.listeners.resolve(requireString(asParams(raw), 'ref'));
    await ctx.engine.listeners.setState(record, 'paused');
    return ctx.engine.listeners.info(record);
  },

  async 'listener.resume'(raw, ctx) {
    const record = ctx.engine.listeners.resolve(requireString(asParams(raw), 'ref'));
    await ctx.engine.listeners.setState(record, 'active');
    return ctx.engine.listeners.info(record);
  },

  async 'deliveries.list'(raw, ctx) {
    const params = asParams(raw);
    const ref = optionalString(params, 'listener');
    const state = optionalString(params, 'state');
    if (state !== undefined && !['pending', 'failed', 'dead', 'delivered'].includes(state)) {
      throw new DiscueError('INVALID_ARGUMENT', '--state takes pending, failed, dead or delivered');
    }
    const listener = ref === undefined ? undefined : ctx.engine.listeners.resolve(ref);
    const limit = optionalInt(params, 'limit', 1, MAX_LIST) ?? 100;
    const records = await ctx.store.deliveries.list({
      listenerId: listener?.id,
      state: state as DeliveryState | undefined,
      limit,
    });
    return records.map((r): DeliveryInfo => {
      const owner = ctx.store.deliveries.listener(r.listenerId);
      const info: DeliveryInfo = { id: `${r.listenerId}/${r.messageId}`, ...r };
      if (owner?.name) info.listenerName = owner.name;
      return info;
    });
  },

  async 'deliveries.retry'(raw, ctx) {
    const params = asParams(raw);
    const id = optionalString(params, 'id');
    if (id !== undefined) {
      const [listenerId, messageId] = id.split('/');
      if (!listenerId || !messageId) {
        throw new DiscueError('INVALID_ARGUMENT', 'a delivery id looks like LISTENER/MESSAGE_ID (see `discue deliveries list`)');
      }
      return { retried: await ctx.engine.listeners.retry({ listenerId, messageId: assertMessageId(messageId) }) };
    }
    if (optionalBoolean(params, 'allDead') !== true) {
      throw new DiscueError('INVALID_ARGUMENT', 'give a delivery id or --all-dead');
    }
    return { retried: await ctx.engine.listeners.retry({ listenerId: optionalString(params, 'listener'), allDead: true }) };
  },

  async listen(raw, ctx, req) {
    const params = asParams(raw);
    const queues = params.queues === undefined ? [] : queueList(params.queues);
    for (const queue of queues) await ctx.store.queueConfig(queue); // QUEUE_NOT_FOUND early
    const name = optionalString(params, 'name');
    if (name !== undefined) validateListenerName(name);
    const from = params.from === undefined ? 'new' : params.from;
    if (from !== 'new' && from !== 'all') throw new DiscueError('INVALID_ARGUMENT', 'from takes "new" or "all"');
    const prefetch = optionalInt(params, 'prefetch', 1, 1000) ?? 1;
    const options: StreamOptions = { queues, from, prefetch };
    const sinceMs = optionalInt(params, 'sinceMs', 0, Number.MAX_SAFE_INTEGER);
    if (sinceMs !== undefined) options.sinceMs = sinceMs;
    if (name !== undefined) options.name = name;
    const stream = await ctx.engine.streams.attach(options, (event) => req.emit(event));
    req.streams.set(req.id, stream);
    // The stream lasts until the client goes away or the daemon stops.
    await new Promise<void>((resolve) =>
      req.onClose(() => {
        req.streams.delete(req.id);
        stream.detach();
        resolve();
      }),
    );
    return { reason: 'closed' };
  },

  async 'messages.list'(raw, ctx) {
    return (await messagePage(raw, ctx)).messages;
  },

  async 'messages.page'(raw, ctx) {
    return messagePage(raw, ctx);
  },

  async 'messages.get'(raw, ctx) {
    const params = asParams(raw);
    return ctx.store.getMessage(validateQueueName(params.queue), assertMessageId(requireString(params, 'id')));
  },

  async 'messages.delete'(raw, ctx) {
    const params = asParams(raw);
    const id = assertMessageId(requireString(params, 'id'));
    await ctx.store.deleteMessage(validateQueueName(params.queue), id);
    return { id };
  },
};


/**
 * Refuses a program the daemon could never run, at add time rather than as a
 * dead delivery later. It is resolved the way the delivery will run it: a
 * path relative to the listener's cwd, a bare name on the daemon's PATH.
 */
async function checkProgram(file: string, cwd: string): Promise<void> {
  if (file.includes('/')) {
    const path = resolvePath(cwd, file);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) {
      throw new DiscueError('COMMAND_NOT_FOUND', `${file} does not exist (looked for ${path}); check the path, relative to ${cwd}`);
    }
    if (!info.isFile() || !(await isExecutable(path))) {
      throw new DiscueError(
        'COMMAND_NOT_EXECUTABLE',
        info.isFile() ? `${file} is not executable: run chmod +x ${file}` : `${file} is a directory, not a program`,
      );
    }
    return;
  }
  const dirs = (process.env.PATH ?? '').split(delimiter);
  for (const dir of dirs) {
    // An empty PATH entry means the current directory, as for execvp.
    const path = resolvePath(cwd, dir === '' ? '.' : dir, file);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && (await isExecutable(path))) return;
  }
  throw new DiscueError(
    'COMMAND_NOT_FOUND',
    `${file} is not on the daemon's PATH (${process.env.PATH ?? 'unset'}); give its full path, or restart the daemon from a shell whose PATH has it`,
  );
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * A page of messages; damaged records are skipped and their ids returned
 * (messages.page), so one bad record never hides the good ones.
 */
async function messagePage(raw: unknown, ctx: HandlerContext): Promise<{ messages: Envelope[]; damaged: string[] }> {
  const params = asParams(raw);
  const queue = validateQueueName(params.queue);
  const after = optionalString(params, 'afterId');
  const afterId = after === undefined ? undefined : assertMessageId(after);
  const sinceMs = optionalInt(params, 'sinceMs', 0, Number.MAX_SAFE_INTEGER);
  const limit = optionalInt(params, 'limit', 1, MAX_LIST) ?? 100;
  // Keep a reply well under the frame limit (always at least one message):
  // clients page on with afterId until they get an empty page.
  return ctx.store.readMessages(queue, { afterId, sinceMs, limit, maxBytes: MAX_LIST_REPLY_BYTES });
}

function withQueueStats(ctx: HandlerContext, info: QueueInfo, now: number): QueueInfo {
  info.stats = { added: ctx.engine.stats.window(`queue:${info.name}:added`, now), listeners: ctx.engine.listenerCount(info.name) };
  return info;
}

function queueList(value: unknown): string[] {
  if (!Array.isArray(value)) throw new DiscueError('INVALID_ARGUMENT', '"queues" must be an array of queue names');
  return [...new Set(value.map((q) => validateQueueName(q)))];
}

const LISTENER_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

function validateListenerName(name: string): void {
  if (!LISTENER_NAME_RE.test(name)) {
    throw new DiscueError('INVALID_ARGUMENT', `invalid listener name ${JSON.stringify(name)}: use 1-64 characters of a-z A-Z 0-9 . _ -`);
  }
}

function validateUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DiscueError('INVALID_ARGUMENT', `invalid URL ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new DiscueError('INVALID_ARGUMENT', `a listener URL must be http:// or https://, got ${url.protocol}`);
  }
  return url.toString();
}

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'transfer-encoding', 'connection']);

function validateHeaders(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (!HEADER_NAME_RE.test(key) || typeof value !== 'string' || /[\r\n\0]/.test(value)) {
      throw new DiscueError('INVALID_ARGUMENT', `invalid header ${JSON.stringify(key)}`);
    }
    if (RESERVED_HEADERS.has(key.toLowerCase())) {
      throw new DiscueError('INVALID_ARGUMENT', `header ${key} is set by discue and cannot be overridden`);
    }
    out[key] = value;
  }
  return out;
}
