import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { parseDuration } from '../../client/duration.js';
import type { DeliveryInfo, StatsSnapshot } from '../../protocol/wire.js';
import type { DiscueClient } from '../../client/client.js';
import { action, examples } from '../action.js';
import type { Context } from '../context.js';
import { bytes, table, uptime } from '../format.js';
import { combinedHealth, healthText, lagText } from '../health.js';

/**
 * --interval: a duration like every other option's (`500ms`, `2s`). A bare
 * number stays milliseconds, as this option always took it (`--interval 200`);
 * before, `2s` meant 100ms (parseInt) and garbage the default. Under 100ms is raised to 100ms.
 */
export function parseInterval(text: string): number {
  const trimmed = text.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) : parseDuration(trimmed, '--interval');
  if (!(ms > 0)) throw new DiscueError('INVALID_DURATION', `--interval takes a positive duration like 500ms or 2s, got "${text}"`);
  return Math.max(100, ms);
}

export function registerTop(program: Command): void {
  program
    .command('top')
    .description('live dashboard of queues, listeners and deliveries (one plain snapshot when not a terminal)')
    .option('--interval <duration>', 'refresh interval, like 500ms or 2s (a bare number is milliseconds; at least 100ms)', '1s')
    .addHelpText(
      'after',
      examples('discue top                 # q quits, ↑↓ select, enter shows attempts, p pauses/resumes', 'discue top --json | jq .listeners'),
    )
    .action(
      action(async (ctx, _args, opts) => {
        // Checked first: bad input is an error even where no live view runs.
        const interval = parseInterval(String(opts.interval));
        const client = await ctx.connect();
        if (ctx.json || !process.stdout.isTTY || !process.stdin.isTTY) {
          const snapshot = await client.request('stats', {});
          if (ctx.json) ctx.printJson(snapshot);
          else ctx.print(plainSnapshot(snapshot));
          return EXIT.OK;
        }
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
