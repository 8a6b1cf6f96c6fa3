/** Stored messages: listing them a page at a time, reading and deleting one. */
import { assertMessageId } from '../../protocol/ids.js';
import { validateQueueName } from '../../protocol/validate.js';
import type { Envelope } from '../../protocol/wire.js';
import { asParams, optionalInt, optionalString, requireString } from '../params.js';
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
} satisfies Partial<HandlerMap>;

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
  return ctx.store.readMessages(queue, { after: afterId, sinceMs, limit, maxBytes: MAX_LIST_REPLY_BYTES });
}
