/** Queues: create, list, get, update, delete, purge. */
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
} satisfies Partial<HandlerMap>;

export function withQueueStats(ctx: HandlerContext, info: QueueInfo, now: number): QueueInfo {
  info.stats = { added: ctx.engine.stats.window(`queue:${info.name}:added`, now), listeners: ctx.engine.listenerCount(info.name) };
  return info;
}
