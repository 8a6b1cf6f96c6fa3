/**
 * Request handlers: one function per request type. Each checks its params
 * (they come from the socket), calls the store, and returns the result; the
 * connection turns thrown DiscueErrors into error replies.
 */
import { DiscueError } from '../protocol/errors.js';
import { assertMessageId } from '../protocol/ids.js';
import { validateMessage, validateQueueName } from '../protocol/messages.js';
import type { DaemonStatus, MessageInput, RequestType } from '../protocol/messages.js';
import type { Store } from '../store/types.js';
import {
  asParams,
  nullableInt,
  optionalBoolean,
  optionalInt,
  optionalObject,
  optionalString,
  requireString,
} from './params.js';
import { SchemaRegistry, checkData } from './schemas.js';

/** Largest batch one publish request may carry. */
export const MAX_BATCH = 10_000;
const MAX_LIST = 10_000;
const HUNDRED_YEARS_MS = 100 * 365 * 86_400_000;

export interface HandlerContext {
  store: Store;
  schemas: SchemaRegistry;
  status(): DaemonStatus;
  shutdown(reason: string): void;
}

export type Handler = (params: unknown, ctx: HandlerContext) => Promise<unknown>;

export const handlers: Record<Exclude<RequestType, 'hello'>, Handler> = {
  async 'daemon.status'(_params, ctx) {
    return ctx.status();
  },

  async 'daemon.shutdown'(_params, ctx) {
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

  async 'queue.list'(_params, ctx) {
    return ctx.store.listQueues();
  },

  async 'queue.get'(raw, ctx) {
    return ctx.store.getQueue(validateQueueName(asParams(raw).name));
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
    const config = ctx.store.queueConfig(queue);
    const validate = config.schema ? await ctx.schemas.forQueue(queue, config.schema) : undefined;
    const messages: MessageInput[] = new Array(list.length);
    // All or nothing: the whole batch is checked before any of it is stored.
    for (let i = 0; i < list.length; i++) {
      const where = list.length === 1 ? 'message' : `message ${i + 1}`;
      try {
        const message = validateMessage(list[i], where);
        if (validate) checkData(validate, message.data, where);
        messages[i] = message;
      } catch (err) {
        if (err instanceof DiscueError) {
          const details = err.details === undefined ? { index: i } : { index: i, errors: err.details };
          throw new DiscueError(err.code, err.message, { details });
        }
        throw err;
      }
    }
    const stored = await ctx.store.append(queue, messages);
    return { queue, ids: stored.map((m) => m.id), publishedAt: stored[0]!.publishedAt };
  },

  async 'messages.list'(raw, ctx) {
    const params = asParams(raw);
    const queue = validateQueueName(params.queue);
    const after = optionalString(params, 'afterId');
    const afterId = after === undefined ? undefined : assertMessageId(after);
    const sinceMs = optionalInt(params, 'sinceMs', 0, Number.MAX_SAFE_INTEGER);
    const limit = optionalInt(params, 'limit', 1, MAX_LIST) ?? 100;
    return ctx.store.listMessages(queue, { afterId, sinceMs, limit });
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

