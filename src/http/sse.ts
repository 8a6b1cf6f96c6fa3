/**
 * GET /v1/queues/{queue}/events: Server-Sent Events of a queue's messages,
 * from now, or after `Last-Event-ID` (or ?after=ID). Each event's `id:` is
 * the message id. The stream reads the queue a page at a time through the
 * same handler as `messages list` (messages.page) and waits for a new append
 * between pages, so it sends every stored message once, in order, with no
 * gap: a reconnect with the last id it saw goes on from exactly there.
 */
import { DiscueError } from '../protocol/errors.js';
import { assertMessageId } from '../protocol/ids.js';
import type { ParamsOf } from '../protocol/requests.js';
import type { QueueEvent, Store } from '../backend/types.js';
import { call } from './routes.js';
import type { Route } from './routes.js';

const PAGE = 500;

/** Wakes a stream: on an append, or with the event when its queue is renamed or deleted. */
type Waker = (event?: QueueEvent) => void;

/** Per store, the streams to wake, by queue id (one listener each per store: the store has no unsubscribe). */
const wakers = new WeakMap<Store, Map<string, Set<Waker>>>();

function wakersOf(store: Store): Map<string, Set<Waker>> {
  let byQueue = wakers.get(store);
  if (!byQueue) {
    const created = new Map<string, Set<Waker>>();
    store.onAppend((queue) => {
      for (const wake of created.get(queue) ?? []) wake();
    });
    store.onQueueEvent((event) => {
      if (event.type === 'created') return;
      for (const wake of created.get(event.queue) ?? []) wake(event);
    });
    wakers.set(store, created);
    byQueue = created;
  }
  return byQueue;
}

export const EVENTS_ROUTE: Route = {
  method: 'GET',
  path: '/v1/queues/{queue}/events',
  summary: 'Server-Sent Events of new messages; `id:` is the message id, and Last-Event-ID (or ?after=) resumes with nothing lost',
  scope: 'read',
  query: [{ name: 'after', schema: { type: 'string' }, description: 'start after this message id (as Last-Event-ID)' }],
  response: { status: 200, schema: { type: 'string', description: 'event: message, data: the envelope as JSON' }, contentType: 'text/event-stream' },
  errors: [404],
  async handle(c, out) {
    let queue = c.params.queue!;
    const qid = c.ctx.store.queueId(queue); // QUEUE_NOT_FOUND before the stream starts
    const lastEventId = c.headers['last-event-id'];
    const after = (typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : undefined) ?? c.query.get('after') ?? undefined;
    let position: Partial<ParamsOf<'messages.page'>> = after !== undefined ? { afterId: assertMessageId(after) } : { sinceMs: Date.now() };

    // Set by an append; checked before waiting, so an append during a read is never missed.
    let dirty = true;
    let wake: (() => void) | undefined;
    const onAppend: Waker = (event) => {
      // Renamed: the stream follows its queue. Deleted: the next read says so, and the stream ends.
      if (event?.type === 'renamed') queue = event.name;
      dirty = true;
      wake?.();
    };
    const byQueue = wakersOf(c.ctx.store);
    const set = byQueue.get(qid) ?? new Set();
    byQueue.set(qid, set);
    set.add(onAppend);
    let closed = false;
    out.onClose(() => {
      closed = true;
      wake?.();
    });
    out.start(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    out.write('retry: 1000\n\n');
    try {
      while (!closed && !out.closed) {
        if (!dirty) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, out.heartbeatMs);
          });
          // Cleared, not left to fire: at 1,000 appends a second a stream would hold 15,000 timers.
          clearTimeout(timer);
          wake = undefined;
          if (!dirty && !closed) {
            if (!c.stillAuthorized()) throw new DiscueError('UNAUTHORIZED', 'the token was revoked');
            out.write(': heartbeat\n\n');
          }
          continue;
        }
        dirty = false;
        if (!c.stillAuthorized()) throw new DiscueError('UNAUTHORIZED', 'the token was revoked');
        for (;;) {
          const page = await call(c.ctx, 'messages.page', { queue, limit: PAGE, ...position });
          for (const message of page.messages) {
            if (!out.write(`id: ${message.id}\nevent: message\ndata: ${JSON.stringify(message)}\n\n`)) await out.drain();
          }
          if (page.next !== undefined) position = { next: page.next };
          if (page.messages.length === 0 || closed || out.closed) break;
        }
      }
    } catch (err) {
      // The queue was deleted, the token revoked, or the store failed: say why, then end.
      const error = err instanceof DiscueError ? err.toWire() : { code: 'INTERNAL', message: 'the stream failed' };
      if (!out.closed) out.write(`event: error\ndata: ${JSON.stringify({ error })}\n\n`);
    } finally {
      set.delete(onAppend);
      if (set.size === 0) byQueue.delete(qid);
      out.end();
    }
    return 'streamed';
  },
};

