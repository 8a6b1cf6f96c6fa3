/**
 * Below the handlers a queue is its id (the engine, listener and delivery
 * records, the backend's messages): its name lives only in the catalogue.
 * Handlers resolve the names a request gives here, and name the queues in
 * what they reply, so a `queue rename` changes one record.
 */
import type { ListenerRecord, QueueId } from '../../backend/types.js';
import { validateQueueName } from '../../protocol/validate.js';
import type { ListenerInfo } from '../../protocol/wire.js';
import type { HandlerContext } from './types.js';
import { queueList } from './validate.js';

/** The id of the queue a request names (INVALID_QUEUE_NAME, QUEUE_NOT_FOUND). */
export function queueIdOf(ctx: HandlerContext, name: unknown): QueueId {
  return ctx.store.queueId(validateQueueName(name));
}

/** The ids of a request's list of queue names, each checked and existing. */
export function queueIdsOf(ctx: HandlerContext, names: unknown): QueueId[] {
  return queueList(names).map((name) => ctx.store.queueId(name));
}

/** A queue's name for a reply; the id of one deleted meanwhile. */
export function nameOf(ctx: HandlerContext, id: QueueId): string {
  return ctx.store.queueName(id) ?? id;
}

/** A listener as replies show it: its queues by name. */
export function listenerInfo(ctx: HandlerContext, record: ListenerRecord, withSecret = false): ListenerInfo {
  const info = ctx.engine.listeners.info(record, withSecret);
  info.queues = info.queues.map((id) => nameOf(ctx, id));
  for (const progress of info.progress ?? []) progress.queue = nameOf(ctx, progress.queue);
  return info;
}
