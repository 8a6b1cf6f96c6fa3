/**
 * Every request a handler serves, one file per resource (as Nx's daemon
 * keeps one handler per request). Typed over RequestType: a request type
 * added to the protocol without a handler does not compile.
 */
import { daemonHandlers } from './daemon.js';
import { deliveriesHandlers } from './deliveries.js';
import { listenHandlers } from './listen.js';
import { listenerHandlers } from './listener.js';
import { messagesHandlers } from './messages.js';
import { publishHandlers } from './publish.js';
import { queueHandlers } from './queue.js';
import { tokenHandlers } from './token.js';
import type { HandlerMap } from './types.js';

export type { HandledType, Handler, HandlerContext, HandlerMap, RequestContext } from './types.js';

export const handlers: HandlerMap = {
  ...daemonHandlers,
  ...queueHandlers,
  ...publishHandlers,
  ...listenerHandlers,
  ...deliveriesHandlers,
  ...listenHandlers,
  ...messagesHandlers,
  ...tokenHandlers,
};
