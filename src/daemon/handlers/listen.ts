/** `listen`: a foreground listener, streamed over this connection until it closes. */
import { validateFilters } from '../../protocol/choose.js';
import { DiscueError } from '../../protocol/errors.js';
import { START_FROM, isStartFrom } from '../../protocol/requests.js';
import type { StreamOptions } from '../../delivery/streams.js';
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
    const options: StreamOptions = { queues, from, prefetch };
    const sinceMs = optionalInt(params, 'sinceMs', 0, Number.MAX_SAFE_INTEGER);
    if (sinceMs !== undefined) options.sinceMs = sinceMs;
    if (name !== undefined) options.name = name;
    if (params.filters !== undefined) options.filters = validateFilters(params.filters);
    const stream = await ctx.engine.streams.attach(options, (event) => req.emit(event));
    req.streams.set(req.id, stream);
    // The stream lasts until the client goes away or the daemon stops.
    await new Promise<void>((resolve) =>
      req.onClose(() => {
        req.streams.delete(req.id);
        stream.detach();
        resolve();
      }),
    );
    return { reason: 'closed' };
  },
} satisfies Partial<HandlerMap>;
