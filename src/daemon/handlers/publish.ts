/** Publishing a batch of messages, optionally waiting for their delivery; and many publishes in one request. */
import type { QueueId } from '../../backend/types.js';
import { DiscueError } from '../../protocol/errors.js';
import { MAX_BATCH, validateMessage, validateQueueName } from '../../protocol/validate.js';
import type { MessageInput, PublishManyOutcome, PublishResult } from '../../protocol/wire.js';
import { asParams, optionalBoolean, optionalInt } from '../params.js';
import type { HandlerContext, HandlerMap } from './types.js';
import { HUNDRED_YEARS_MS } from './validate.js';

/** One publish's params, checked: all or nothing, before any of it is stored. */
interface Checked {
  queue: string;
  id: QueueId;
  messages: MessageInput[];
  schema: Record<string, unknown> | undefined;
  keyed: boolean;
}

function checkPublish(params: Record<string, unknown>, ctx: HandlerContext): Checked {
  const queue = validateQueueName(params.queue);
  const id = ctx.store.queueId(queue);
  const list = params.messages;
  if (!Array.isArray(list) || list.length === 0) {
    throw new DiscueError('INVALID_ARGUMENT', '"messages" must be a non-empty array');
  }
  if (list.length > MAX_BATCH) {
    throw new DiscueError('INVALID_ARGUMENT', `at most ${MAX_BATCH} messages per publish request`);
  }
  const messages: MessageInput[] = new Array(list.length);
  let keyed = false;
  for (let i = 0; i < list.length; i++) {
    try {
      const message = validateMessage(list[i], list.length === 1 ? 'message' : `message ${i + 1}`);
      if (message.key !== undefined) keyed = true;
      messages[i] = message;
    } catch (err) {
      if (err instanceof DiscueError) throw new DiscueError(err.code, err.message, { details: { index: i } });
      throw err;
    }
  }
  return { queue, id, messages, schema: ctx.store.queueConfig(id).schema, keyed };
}

/** Stores one checked publish: the result a `publish` request answers. */
async function store(checked: Checked, ctx: HandlerContext): Promise<{ result: PublishResult; through: string }> {
  if (checked.schema) await ctx.schemas.check(checked.id, checked.schema, checked.messages.map((m) => m.data));
  const outcome = await ctx.store.appendOnce(checked.id, checked.messages);
  const result: PublishResult = { queue: checked.queue, ids: outcome.ids, publishedAt: outcome.publishedAt };
  if (outcome.duplicates.length > 0) result.duplicates = outcome.duplicates;
  return { result, through: outcome.through };
}

/**
 * Publishes to one queue without keys or a schema, stored as one batch: what
 * the library's coalescing sends most. Each gets its slice of the ids, as if
 * sent one after the other (ids are made in request order either way).
 */
async function storeRun(run: Checked[], ctx: HandlerContext): Promise<PublishResult[]> {
  const all = run.length === 1 ? run[0]!.messages : run.flatMap((c) => c.messages);
  const outcome = await ctx.store.appendOnce(run[0]!.id, all);
  let at = 0;
  return run.map((c) => {
    const ids = outcome.ids.slice(at, (at += c.messages.length));
    return { queue: c.queue, ids, publishedAt: outcome.publishedAt };
  });
}

function settled(result: PublishResult): PublishManyOutcome {
  return { ok: true, result };
}

function failed(err: unknown): PublishManyOutcome {
  // Anything else is a bug: it fails the whole request, which logs it.
  if (!(err instanceof DiscueError)) throw err;
  return { ok: false, error: err.toWire() };
}

export const publishHandlers = {
  async publish(raw, ctx) {
    const params = asParams(raw);
    const checked = checkPublish(params, ctx);
    const wait = optionalBoolean(params, 'wait') ?? false;
    const waitTimeoutMs = optionalInt(params, 'waitTimeoutMs', 1, HUNDRED_YEARS_MS) ?? 30_000;
    const { result, through } = await store(checked, ctx);
    if (wait) result.deliveries = await ctx.engine.waitFor(checked.id, result.ids, checked.messages.map((m) => m.name), through, waitTimeoutMs);
    return result;
  },

  /**
   * Many publishes in one frame (the library coalesces publishes made in the
   * same tick): each is checked, stored and answered on its own, exactly as
   * a `publish` of its own would be, in the order given. Frame parsing,
   * dispatch, the reply and the commit's bookkeeping are paid once, not per
   * publish. No `wait`: a publish that waits goes alone.
   */
  async 'publish.many'(raw, ctx) {
    const params = asParams(raw);
    const list = params.publishes;
    if (!Array.isArray(list) || list.length === 0) {
      throw new DiscueError('INVALID_ARGUMENT', '"publishes" must be a non-empty array of {"queue": ..., "messages": [...]}');
    }
    if (list.length > MAX_BATCH) throw new DiscueError('INVALID_ARGUMENT', `at most ${MAX_BATCH} publishes per publish.many request`);
    const outcomes: (PublishManyOutcome | Promise<PublishManyOutcome>)[] = new Array(list.length);
    const checked: (Checked | undefined)[] = new Array(list.length);
    let total = 0;
    for (let i = 0; i < list.length; i++) {
      try {
        // Not asParams: it reads null as no params ({}), and a null publish is not one to a queue named undefined.
        const item = list[i];
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          throw new DiscueError('INVALID_ARGUMENT', 'each publish must be an object {"queue": ..., "messages": [...]}');
        }
        if (item.wait !== undefined || item.waitTimeoutMs !== undefined) {
          throw new DiscueError('INVALID_ARGUMENT', 'a publish in publish.many cannot wait; send it as a publish request of its own');
        }
        const c = checkPublish(item as Record<string, unknown>, ctx);
        total += c.messages.length;
        checked[i] = c;
      } catch (err) {
        outcomes[i] = failed(err);
      }
    }
    if (total > MAX_BATCH) throw new DiscueError('INVALID_ARGUMENT', `at most ${MAX_BATCH} messages per publish.many request`);
    // Stored in the order given: consecutive plain publishes to one queue as
    // one batch, any other on its own, each started before the next.
    let run: Checked[] = [];
    let runAt: number[] = [];
    const endRun = () => {
      if (run.length === 0) return;
      const stored = storeRun(run, ctx);
      runAt.forEach((at, j) => (outcomes[at] = stored.then((results) => settled(results[j]!), failed)));
      run = [];
      runAt = [];
    };
    for (let i = 0; i < list.length; i++) {
      const c = checked[i];
      if (c === undefined) continue;
      if (c.keyed || c.schema) {
        endRun();
        outcomes[i] = store(c, ctx).then(({ result }) => settled(result), failed);
        continue;
      }
      if (run.length > 0 && run[0]!.id !== c.id) endRun();
      run.push(c);
      runAt.push(i);
    }
    endRun();
    return { results: await Promise.all(outcomes) };
  },
} satisfies Partial<HandlerMap>;
