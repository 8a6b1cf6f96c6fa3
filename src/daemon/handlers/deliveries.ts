/** Delivery records: listing them, and retrying failed or dead ones. */
import { DiscueError } from '../../protocol/errors.js';
import { assertMessageId } from '../../protocol/ids.js';
import { DELIVERY_STATES } from '../../protocol/wire.js';
import type { DeliveryInfo, DeliveryState } from '../../protocol/wire.js';
import { asParams, optionalBoolean, optionalInt, optionalString } from '../params.js';
import { nameOf } from './names.js';
import type { HandlerMap } from './types.js';
import { MAX_LIST } from './validate.js';

export const deliveriesHandlers = {
  async 'deliveries.list'(raw, ctx) {
    const params = asParams(raw);
    const ref = optionalString(params, 'listener');
    const state = optionalString(params, 'state');
    if (state !== undefined && !(DELIVERY_STATES as readonly string[]).includes(state)) {
      throw new DiscueError('INVALID_ARGUMENT', `--state takes one of: ${DELIVERY_STATES.join(', ')}`);
    }
    const listener = ref === undefined ? undefined : ctx.engine.listeners.resolve(ref);
    const limit = optionalInt(params, 'limit', 1, MAX_LIST) ?? 100;
    const records = await ctx.store.deliveries.list({
      listenerId: listener?.id,
      state: state as DeliveryState | undefined,
      limit,
    });
    return records.map((r): DeliveryInfo => {
      const owner = ctx.store.deliveries.listener(r.listenerId);
      const info: DeliveryInfo = { id: `${r.listenerId}/${r.messageId}`, ...r, queue: nameOf(ctx, r.queue) };
      if (owner?.name) info.listenerName = owner.name;
      return info;
    });
  },

  async 'deliveries.retry'(raw, ctx) {
    const params = asParams(raw);
    const id = optionalString(params, 'id');
    if (id !== undefined) {
      const [listenerId, messageId] = id.split('/');
      if (!listenerId || !messageId) {
        throw new DiscueError('INVALID_ARGUMENT', 'a delivery id looks like LISTENER/MESSAGE_ID (see `discue deliveries list`)');
      }
      return { retried: await ctx.engine.listeners.retry({ listenerId, messageId: assertMessageId(messageId) }) };
    }
    if (optionalBoolean(params, 'allDead') !== true) {
      throw new DiscueError('INVALID_ARGUMENT', 'give a delivery id or --all-dead');
    }
    return { retried: await ctx.engine.listeners.retry({ listenerId: optionalString(params, 'listener'), allDead: true }) };
  },
} satisfies Partial<HandlerMap>;
