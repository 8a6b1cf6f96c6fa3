import type { Command } from 'commander';
import { EXIT } from '../../protocol/errors.js';
import type { DeliveryInfo, StatsSnapshot } from '../../protocol/messages.js';
import type { DiscueClient } from '../../client/client.js';
import { action, examples } from '../action.js';
import type { Context } from '../context.js';
import { bytes, table, uptime } from '../format.js';
import { combinedHealth, healthText, lagText } from '../health.js';

export function registerTop(program: Command): void {
  program
    .command('top')
    .description('live dashboard of queues, listeners and deliveries (one plain snapshot when not a terminal)')
    .option('--interval <ms>', 'refresh interval in milliseconds', '1000')
    .addHelpText(
      'after',
      examples('discue top                 # q quits, ↑↓ select, enter shows attempts, p pauses/resumes', 'discue top --json | jq .listeners'),
    )
    .action(
      action(async (ctx, _args, opts) => {
        const client = await ctx.connect();
        if (ctx.json || !process.stdout.isTTY || !process.stdin.isTTY) {
          const snapshot = await client.request('stats', {});
          if (ctx.json) ctx.printJson(snapshot);
          else ctx.print(plainSnapshot(snapshot));
          return EXIT.OK;
        }
        const interval = Math.max(100, Number.parseInt(String(opts.interval), 10) || 1000);
        return live(ctx, client, interval);
      }),
    );
}

async function live(_ctx: Context, client: DiscueClient, intervalMs: number): Promise<number> {
  // Ink renders only a final frame when it thinks it runs in CI (it reads
  // CI at import). Here stdin and stdout are terminals, so a person is
  // watching: draw live even on a machine that exports CI=true.
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  // Ink and React load only here: no other command pays for them.
  const [{ render }, { createElement }, { TopApp }] = await Promise.all([
    import('ink'),
    import('react'),
    import('../../ui/top.js'),
  ]);
  const source = {
    stats: () => client.request('stats', {}),
    deliveries: async (listener: string): Promise<DeliveryInfo[]> => {
      const [open, delivered] = await Promise.all([
        client.request('deliveries.list', { listener, limit: 20 }),
        client.request('deliveries.list', { listener, state: 'delivered', limit: 20 }),
      ]);
      return [...open, ...delivered].sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : -1)).slice(0, 20);
    },
    setPaused: async (listener: string, paused: boolean) => {
      await client.request(paused ? 'listener.pause' : 'listener.resume', { ref: listener });
    },
  };
  const app = render(createElement(TopApp, { source, intervalMs }), { exitOnCtrlC: false });
  const how = await app.waitUntilExit();
  return how === 'interrupted' ? EXIT.INTERRUPTED : EXIT.OK;
}

export function plainSnapshot(s: StatsSnapshot): string {
  const lines: string[] = [];
  lines.push(
    `discue ${s.daemon.version} · pid ${s.daemon.pid} · up ${uptime(s.daemon.uptimeMs)} · ${s.daemon.queues} queues · ${s.daemon.messages} messages · ${bytes(s.daemon.rssBytes)}`,
  );
  lines.push('');
  lines.push(
    s.queues.length === 0
      ? 'no queues'
      : table(
          ['QUEUE', 'MESSAGES', 'RATE/MIN', 'ADDED 1H', 'ADDED 24H', 'LISTENERS'],
          s.queues.map((q) => [
            q.name,
            String(q.messages),
            String(q.stats?.added.lastMinute ?? 0),
            String(q.stats?.added.lastHour ?? 0),
            String(q.stats?.added.last24h ?? 0),
            String(q.stats?.listeners ?? 0),
          ]),
        ),
  );
  lines.push('');
  lines.push(
    s.listeners.length === 0
      ? 'no listeners'
      : table(
          ['LISTENER', 'KIND', 'STATE', 'PENDING', 'LAG', 'OK 1H', 'FAILED 1H', 'DEAD', 'HEALTH'],
          s.listeners.map((l) => [
            l.name ?? l.id,
            l.kind,
            l.state,
            String(l.stats?.pending ?? 0),
            lagText(l.stats?.lagMs ?? 0),
            String(l.stats?.succeeded.lastHour ?? 0),
            String(l.stats?.failed.lastHour ?? 0),
            String(l.stats?.dead.sinceStart ?? 0),
            healthText(combinedHealth(l.progress ?? []), Date.parse(s.at)),
          ]),
        ),
  );
  lines.push('');
  lines.push('RECENT DELIVERIES');
  lines.push(
    s.recent.length === 0
      ? 'none yet'
      : table(
          ['TIME', 'LISTENER', 'QUEUE', 'MESSAGE', 'STATE', 'RESULT', 'DURATION'],
          s.recent.slice(0, 20).map((r) => [
            r.at,
            r.listener,
            r.queue,
            r.messageId || '-',
            r.state,
            r.attempt.status !== undefined ? `HTTP ${r.attempt.status}` : r.attempt.exitCode !== undefined ? `exit ${r.attempt.exitCode}` : (r.attempt.error ?? '-'),
            `${r.attempt.durationMs}ms`,
          ]),
        ),
  );
  return lines.join('\n');
}
