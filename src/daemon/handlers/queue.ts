/** Queues: create, list, get, update, delete, purge, rename. */
import { DiscueError } from '../../protocol/errors.js';
import { validateQueueName } from '../../protocol/validate.js';
import type { QueueInfo } from '../../protocol/wire.js';
import { asParams, nullableInt, optionalBoolean, optionalInt, optionalObject } from '../params.js';
import type { HandlerContext, HandlerMap } from './types.js';
import { HUNDRED_YEARS_MS } from './validate.js';

export const queueHandlers = {
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
    await ctx.store.ready?.('list the queues');
    const now = Date.now();
    return ctx.store.listQueues().map((q) => withQueueStats(ctx, q, now));
  },

  async 'queue.get'(raw, ctx) {
    const name = validateQueueName(asParams(raw).name);
    // The id before the read: a rename while it reads would leave the reply's name unresolvable.
    const id = ctx.store.queueId(name);
    return withQueueStats(ctx, await ctx.store.getQueue(name), Date.now(), id);
  },

  async 'queue.update'(raw, ctx) {
    const params = asParams(raw);
    const name = validateQueueName(params.name);
    const schema = params.schema === null ? null : optionalObject(params, 'schema');
    if (schema) await ctx.schemas.compile(schema);
    const retentionMs = nullableInt(params, 'retentionMs', 1, HUNDRED_YEARS_MS);
    const maxMessages = nullableInt(params, 'maxMessages', 1, Number.MAX_SAFE_INTEGER);
    const id = ctx.store.queueId(name);
    const info = await ctx.store.updateQueue(name, { schema, retentionMs, maxMessages });
    ctx.schemas.forget(id);
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
    const id = ctx.store.queueId(name);
    const deleted = await ctx.store.deleteQueue(name);
    ctx.schemas.forget(id);
    return { name, deleted };
  },

  async 'queue.purge'(raw, ctx) {
    const name = validateQueueName(asParams(raw).name);
    return { name, deleted: await ctx.store.purgeQueue(name) };
  },

  async 'queue.rename'(raw, ctx) {
    const params = asParams(raw);
    const from = validateQueueName(params.name);
    const to = validateQueueName(params.to);
    // Everything below the catalogue holds the queue's id: listeners, cursors, deliveries, waiters and streams carry on.
    return withQueueStats(ctx, await ctx.store.renameQueue(from, to), Date.now());
  },
} satisfies Partial<HandlerMap>;

export function withQueueStats(ctx: HandlerContext, info: QueueInfo, now: number, id = ctx.store.queueId(info.name)): QueueInfo {
  info.stats = { added: ctx.engine.stats.window(`queue:${id}:added`, now), listeners: ctx.engine.listenerCount(id) };
  return info;
}
