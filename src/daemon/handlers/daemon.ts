/** The daemon itself: status, statistics, shutdown. */
import { asParams, optionalInt } from '../params.js';
import { listenerInfo, nameOf } from './names.js';
import { withQueueStats } from './queue.js';
import type { HandlerMap } from './types.js';

export const daemonHandlers = {
  async 'daemon.status'(raw, ctx) {
    asParams(raw);
    return ctx.status();
  },

  async stats(raw, ctx) {
    const recent = optionalInt(asParams(raw), 'recent', 0, 200) ?? 50;
    await ctx.engine.refreshPending();
    const now = Date.now();
    return {
      at: new Date(now).toISOString(),
      daemon: ctx.status(),
      queues: ctx.store.listQueues().map((q) => withQueueStats(ctx, q, now)),
      listeners: ctx.engine.listeners.list().map((l) => listenerInfo(ctx, l)),
      recent: ctx.engine.recent
        .slice(-recent)
        .reverse()
        .map((r) => ({ ...r, queue: nameOf(ctx, r.queue) })),
    };
  },

  async 'daemon.shutdown'(raw, ctx) {
    asParams(raw);
    // Reply first; the shutdown starts once this reply is on its way.
    setImmediate(() => ctx.shutdown('requested by a client'));
    return { pid: process.pid };
  },
} satisfies Partial<HandlerMap>;
