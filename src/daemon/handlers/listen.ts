/** `listen`: a foreground listener, streamed over this connection until it closes. */
import { DiscueError } from '../../protocol/errors.js';
import { START_FROM, isStartFrom } from '../../protocol/requests.js';
import type { SubscribeOptions } from '../../delivery/engine.js';
import { asParams, optionalInt, optionalString } from '../params.js';
import type { HandlerMap } from './types.js';
import { queueIdsOf } from './names.js';
import { validateListenerName } from './validate.js';

export const listenHandlers = {
  async listen(raw, ctx, req) {
    const params = asParams(raw);
    const queues = params.queues === undefined ? [] : queueIdsOf(ctx, params.queues);
    const name = optionalString(params, 'name');
    if (name !== undefined) validateListenerName(name);
    const from = params.from === undefined ? 'new' : params.from;
    if (!isStartFrom(from)) throw new DiscueError('INVALID_ARGUMENT', `from takes one of: ${START_FROM.join(', ')}`);
    const prefetch = optionalInt(params, 'prefetch', 1, 1000) ?? 1;
    const options: SubscribeOptions = { queues, from, prefetch };
    const sinceMs = optionalInt(params, 'sinceMs', 0, Number.MAX_SAFE_INTEGER);
    if (sinceMs !== undefined) options.sinceMs = sinceMs;
    if (name !== undefined) options.name = name;
    const subscription = await ctx.engine.subscribe(options, (event) => req.emit(event));
    req.subscriptions.set(req.id, subscription);
    // The stream lasts until the client goes away or the daemon stops.
    await new Promise<void>((resolve) =>
      req.onClose(() => {
        req.subscriptions.delete(req.id);
        subscription.detach();
        resolve();
      }),
    );
    return { reason: 'closed' };
  },
} satisfies Partial<HandlerMap>;
