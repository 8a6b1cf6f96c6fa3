/**
 * GET /metrics: Prometheus text format, with prom-client (loaded only with
 * the HTTP API). Gauges and counters are read from the daemon at scrape
 * time (the counts it keeps anyway for `top`); the two histograms observe
 * every delivery attempt as it ends.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { timeOfId } from '../protocol/ids.js';
import type { HandlerContext } from '../daemon/handlers/index.js';
import type { Route } from './routes.js';

export interface Metrics {
  contentType: string;
  text(): Promise<string>;
  close(): void;
}

export function createMetrics(ctx: HandlerContext): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'discue_' });
  const registers = [registry];
  const now = () => Date.now();

  new Counter({
    name: 'discue_messages_published_total',
    help: 'Messages stored per queue since the daemon started',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      for (const q of ctx.store.listQueues()) {
        this.inc({ queue: q.name }, ctx.engine.stats.window(`queue:${ctx.store.queueId(q.name)}:added`, now()).sinceStart);
      }
    },
  });
  new Gauge({
    name: 'discue_queue_messages',
    help: 'Messages stored in the queue now (its depth)',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      for (const q of ctx.store.listQueues()) this.set({ queue: q.name }, q.messages);
    },
  });
  new Gauge({
    name: 'discue_queue_bytes',
    help: 'Bytes of data stored in the queue now',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      for (const q of ctx.store.listQueues()) this.set({ queue: q.name }, q.bytes ?? 0);
    },
  });
  new Counter({
    name: 'discue_deliveries_total',
    help: 'Delivery attempts by listener and outcome (ok, failed) and deliveries given up (dead), since the daemon started',
    labelNames: ['listener', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const record of ctx.engine.listeners.list()) {
        const stats = ctx.engine.listeners.info(record).stats;
        if (!stats) continue;
        const listener = record.name ?? record.id;
        this.inc({ listener, outcome: 'ok' }, stats.succeeded.sinceStart);
        this.inc({ listener, outcome: 'failed' }, stats.failed.sinceStart);
        this.inc({ listener, outcome: 'dead' }, stats.dead.sinceStart);
      }
    },
  });
  new Gauge({
    name: 'discue_listener_pending',
    help: 'Stored messages the listener has not settled yet',
    labelNames: ['listener'],
    registers,
    async collect() {
      this.reset();
      const records = ctx.engine.listeners.list();
      await ctx.engine.refreshPending(records);
      for (const record of records) this.set({ listener: record.name ?? record.id }, ctx.engine.listeners.info(record).stats?.pending ?? 0);
    },
  });
  const attemptSeconds = new Histogram({
    name: 'discue_delivery_attempt_duration_seconds',
    help: 'How long one delivery attempt took (HTTP request or command run)',
    labelNames: ['outcome'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const latencySeconds = new Histogram({
    name: 'discue_delivery_latency_seconds',
    help: 'From a message being stored to its successful delivery, per delivered message',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 3600],
    registers,
  });
  const observe = (_listener: string, messageId: string, attempt: { ok: boolean; durationMs: number; at: string }) => {
    attemptSeconds.observe({ outcome: attempt.ok ? 'ok' : 'failed' }, attempt.durationMs / 1000);
    if (attempt.ok) latencySeconds.observe(Math.max(0, (Date.parse(attempt.at) + attempt.durationMs - timeOfId(messageId)) / 1000));
  };
  ctx.engine.attemptObservers.add(observe);
  return {
    contentType: registry.contentType,
    text: () => registry.metrics(),
    close: () => {
      ctx.engine.attemptObservers.delete(observe);
      registry.clear();
    },
  };
}

export function metricsRoute(metrics: Metrics): Route {
  return {
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus metrics (text format): messages stored and published, deliveries by outcome, delivery latency, queue depth, pending per listener',
    scope: 'metrics',
    response: { status: 200, schema: { type: 'string' }, contentType: 'text/plain' },
    errors: [],
    handle: async () => ({ status: 200, body: await metrics.text(), contentType: metrics.contentType }),
  };
}
