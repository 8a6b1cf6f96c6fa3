/**
 * Reading a queue's messages a page at a time. Each page goes on from the
 * `next` token of the one before: the token is the backend's, opaque here
 * (never compared, never built), so paging does not depend on how a backend
 * orders or names its positions.
 */
import { DiscueError } from '../protocol/errors.js';
import type { MessagePageResult } from '../protocol/wire.js';
import type { DiscueClient } from './client.js';

/** Where a listing starts: after a message id, or from a time; without either, the queue's first message. */
export interface PageStart {
  afterId?: string;
  sinceMs?: number;
}

export class MessagePager {
  private from: PageStart | { next: string };

  constructor(
    private readonly client: DiscueClient,
    private readonly queue: string,
    start: PageStart = {},
  ) {
    this.from = { ...start };
  }

  /** The next page of up to `limit` messages; a page with no messages is the end (for now). */
  async next(limit: number): Promise<MessagePageResult> {
    const { client, queue, from } = this;
    const page: MessagePageResult = await client.request('messages.page', { queue, limit, ...from }).catch(async (err: unknown) => {
      // A daemon started before an upgrade knows only messages.list (no damaged count, no token).
      if (!(err instanceof DiscueError && err.code === 'UNKNOWN_REQUEST') || 'next' in from) throw err;
      return { messages: await client.request('messages.list', { queue, limit, ...from }), damaged: [] };
    });
    if (page.next !== undefined) this.from = { next: page.next };
    // Only a daemon from before page tokens leaves `next` out of a page with messages: it pages by the last id.
    else if (page.messages.length > 0) this.from = { afterId: page.messages[page.messages.length - 1]!.id };
    return page;
  }
}
