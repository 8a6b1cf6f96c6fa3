/** Publishing a batch of messages, optionally waiting for their delivery. */
import { DiscueError } from '../../protocol/errors.js';
import { validateMessage, validateQueueName } from '../../protocol/validate.js';
import type { MessageInput, PublishResult } from '../../protocol/wire.js';
import { asParams, optionalBoolean, optionalInt } from '../params.js';
import type { HandlerMap } from './types.js';
import { HUNDRED_YEARS_MS } from './validate.js';

/** Largest batch one publish request may carry. */
export const MAX_BATCH = 10_000;

export const publishHandlers = {
  async publish(raw, ctx) {
    const params = asParams(raw);
    const queue = validateQueueName(params.queue);
    const id = ctx.store.queueId(queue);
    const list = params.messages;
    if (!Array.isArray(list) || list.length === 0) {
      throw new DiscueError('INVALID_ARGUMENT', '"messages" must be a non-empty array');
    }
    if (list.length > MAX_BATCH) {
      throw new DiscueError('INVALID_ARGUMENT', `at most ${MAX_BATCH} messages per publish request`);
    }
    const config = ctx.store.queueConfig(id);
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
    if (config.schema) await ctx.schemas.check(id, config.schema, messages.map((m) => m.data));
    const wait = optionalBoolean(params, 'wait') ?? false;
    const waitTimeoutMs = optionalInt(params, 'waitTimeoutMs', 1, HUNDRED_YEARS_MS) ?? 30_000;
    const outcome = await ctx.store.appendOnce(id, messages);
    const { ids } = outcome;
    const result: PublishResult = { queue, ids, publishedAt: outcome.publishedAt };
    if (outcome.duplicates.length > 0) result.duplicates = outcome.duplicates;
    if (wait) result.deliveries = await ctx.engine.waitFor(id, ids, messages.map((m) => m.name), outcome.through, waitTimeoutMs);
    return result;
  },
} satisfies Partial<HandlerMap>;
