/** Stored messages: listing them a page at a time, reading and deleting one. */
import { DiscueError } from '../../protocol/errors.js';
import { assertMessageId, isMessageId } from '../../protocol/ids.js';
import { MAX_BATCH, validateMessage } from '../../protocol/validate.js';
import type { Envelope } from '../../protocol/wire.js';
import type { ListOptions, MessagePage } from '../../backend/types.js';
import { asParams, optionalInt, optionalString, requireString } from '../params.js';
import { queueIdOf } from './names.js';
import type { HandlerContext, HandlerMap } from './types.js';
import { MAX_LIST } from './validate.js';

const MAX_LIST_REPLY_BYTES = 8 * 1024 * 1024;

export const messagesHandlers = {
  async 'messages.list'(raw, ctx) {
    return (await messagePage(raw, ctx)).messages;
  },

  async 'messages.page'(raw, ctx) {
    return messagePage(raw, ctx);
  },

  async 'messages.import'(raw, ctx) {
    const params = asParams(raw);
    const queue = queueIdOf(ctx, params.queue);
    const list = params.messages;
    if (!Array.isArray(list) || list.length === 0) throw new DiscueError('INVALID_ARGUMENT', '"messages" must be a non-empty array');
    if (list.length > MAX_BATCH) throw new DiscueError('INVALID_ARGUMENT', `at most ${MAX_BATCH} messages per import request`);
    const name = ctx.store.queueName(queue)!;
    // Checked as a publish is (the schema too: a queue's rules hold for what it stores), and each keeps its id and time.
    const config = ctx.store.queueConfig(queue);
    const envelopes = list.map((value: unknown, i): Envelope => {
      const where = `message ${i + 1}`;
      if (typeof value !== 'object' || value === null) throw new DiscueError('INVALID_MESSAGE', `${where}: an exported message is a JSON object`, { details: { index: i } });
      const { id, publishedAt, queue: _queue, ...content } = value as Record<string, unknown>;
      const input = validateMessage(content, where);
      const ok = typeof id === 'string' && isMessageId(id) && typeof publishedAt === 'string' && !Number.isNaN(Date.parse(publishedAt));
      if (!ok) throw new DiscueError('INVALID_MESSAGE', `${where}: an exported message has an "id" and a "publishedAt"`, { details: { index: i } });
      return input.name === undefined ? { id, queue: name, data: input.data, publishedAt } : { id, queue: name, name: input.name, data: input.data, publishedAt };
    });
    if (config.schema) await ctx.schemas.check(queue, config.schema, envelopes.map((m) => m.data));
    await ctx.store.importMessages(queue, envelopes);
    return { imported: envelopes.length };
  },

  async 'messages.get'(raw, ctx) {
    const params = asParams(raw);
    return ctx.store.getMessage(queueIdOf(ctx, params.queue), assertMessageId(requireString(params, 'id')));
  },

  async 'messages.delete'(raw, ctx) {
    const params = asParams(raw);
    const id = assertMessageId(requireString(params, 'id'));
    await ctx.store.deleteMessage(queueIdOf(ctx, params.queue), id);
    return { id };
  },
} satisfies Partial<HandlerMap>;

/**
 * A page of messages; damaged records are skipped and their ids returned
 * (messages.page), so one bad record never hides the good ones. `next` is
 * the backend's token for where the page ended, passed through unread.
 */
async function messagePage(raw: unknown, ctx: HandlerContext): Promise<MessagePage> {
  const params = asParams(raw);
  const queue = queueIdOf(ctx, params.queue);
  const after = optionalString(params, 'afterId');
  const afterId = after === undefined ? undefined : assertMessageId(after);
  const sinceMs = optionalInt(params, 'sinceMs', 0, Number.MAX_SAFE_INTEGER);
  const next = optionalString(params, 'next');
  if (next !== undefined && (afterId !== undefined || sinceMs !== undefined)) {
    throw new DiscueError('INVALID_ARGUMENT', '"next" goes on from the page before: give it without "afterId" or "sinceMs"');
  }
  const options: ListOptions = { afterId, sinceMs, next, limit: optionalInt(params, 'limit', 1, MAX_LIST) ?? 100 };
  // Keep a reply well under the frame limit (always at least one message):
  // a page past the budget is read again, shorter, so its `next` is where
  // the reply ends. Again until it fits: a message deleted between two reads
  // lets a larger one in.
  for (;;) {
    const page = await ctx.store.readMessages(queue, options);
    const fit = messagesThatFit(page.messages);
    if (fit === page.messages.length) return page;
    options.limit = fit;
  }
}

/** How many of the messages, from the first, fit one reply (at least one). */
function messagesThatFit(messages: Envelope[]): number {
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    bytes += messages[i]!.data.length * 2 + 200;
    if (bytes > MAX_LIST_REPLY_BYTES && i > 0) return i;
  }
  return messages.length;
}
