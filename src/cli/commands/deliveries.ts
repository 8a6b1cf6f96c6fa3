import { Option } from 'commander';
import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { DELIVERY_STATES } from '../../protocol/wire.js';
import type { DeliveryState } from '../../protocol/wire.js';
import { action, examples } from '../action.js';
import { LISTENERS, declareValue } from '../values.js';
import { ago, table } from '../format.js';
import { parseCount } from './queue.js';


export function registerDeliveries(program: Command): void {
  const deliveries = program
    .command('deliveries')
    .description('inspect and retry deliveries: pending, failing, dead, recently delivered')
    .addHelpText(
      'after',
      examples(
        'discue deliveries list --state dead',
        'discue deliveries list --listener mailer --json   # every attempt: time, duration, status or exit code, output tail',
        'discue deliveries retry --all-dead',
        'discue deliveries retry l_AbC123/01JF8Z3K4M5N6P7Q8R9S0T1V2W',
      ),
    );

  deliveries
    .command('list')
    .alias('ls')
    .description('list deliveries that are pending, failing or dead (or recently delivered with --state delivered)')
    .addOption(declareValue(new Option('--listener <ref>', 'only this listener (id or name)'), { kind: LISTENERS }))
    .addOption(new Option('--state <state>', 'only deliveries in this state').choices(DELIVERY_STATES))
    .option('--limit <n>', 'at most this many, newest first', '100')
    .addHelpText(
      'after',
      examples(
        'discue deliveries list --state dead',
        'discue deliveries list --listener mailer --state delivered --json',
        'discue deliveries list --state dead -q       # ids only',
      ),
    )
    .action(
      action(async (ctx, _args, opts) => {
        const state = opts.state as DeliveryState | undefined;
        const params: { listener?: string; state?: DeliveryState; limit: number } = { limit: parseCount(String(opts.limit)) };
        if (opts.listener !== undefined) params.listener = String(opts.listener);
        if (state !== undefined) params.state = state;
        const client = await ctx.connect();
        const list = await client.request('deliveries.list', params);
        // -q: the ids alone, as on the other lists, ready for `deliveries retry`.
        if (ctx.quiet) {
          if (list.length > 0) ctx.print(list.map((d) => d.id).join('\n'));
          return EXIT.OK;
        }
        if (ctx.json) ctx.printJson(list);
        else if (list.length === 0) ctx.note('no deliveries to show');
        else
          ctx.print(
            table(
              ['ID', 'LISTENER', 'QUEUE', 'STATE', 'ATTEMPTS', 'LAST RESULT', 'UPDATED'],
              list.map((d) => {
                const last = d.attempts[d.attempts.length - 1];
                const result = last
                  ? last.ok
                    ? 'ok'
                    : // Whole: table() cuts it to a terminal's width, and a script gets all of it.
                      (last.error ?? (last.status ? `HTTP ${last.status}` : `exit ${String(last.exitCode)}`))
                  : '-';
                const stateText =
                  d.state === 'dead' ? ctx.colors.red(d.state) : d.state === 'delivered' ? ctx.colors.green(d.state) : ctx.colors.yellow(d.state);
                return [d.id, d.listenerName ?? d.listenerId, d.queue, stateText, String(d.attempts.length), result, ago(d.updatedAt)];
              }),
            ),
          );
        return EXIT.OK;
      }),
    );

  deliveries
    .command('retry')
    .description('send dead deliveries again (with a fresh round of attempts)')
    .argument('[id]', 'delivery id LISTENER/MESSAGE_ID, from `deliveries list`')
    .option('--all-dead', 'every dead delivery (of --listener, or of all listeners)')
    .addOption(declareValue(new Option('--listener <ref>', 'with --all-dead: only this listener'), { kind: LISTENERS }))
    .addHelpText(
      'after',
      examples('discue deliveries retry --all-dead', 'discue deliveries retry --all-dead --listener mailer', 'discue deliveries retry l_AbC123/01M8DK0YMQA304GWEX5PX128G5'),
    )
    .action(
      action(async (ctx, [id], opts) => {
        if ((id === undefined) === (opts.allDead !== true)) throw new DiscueError('USAGE', 'give a delivery id or --all-dead');
        const client = await ctx.connect();
        const params: { id?: string; allDead?: boolean; listener?: string } =
          id !== undefined ? { id: String(id) } : { allDead: true };
        if (opts.listener !== undefined) params.listener = String(opts.listener);
        const result = await client.request('deliveries.retry', params);
        if (ctx.json) ctx.printJson(result);
        else ctx.done(`retrying ${result.retried} dead deliver${result.retried === 1 ? 'y' : 'ies'}`);
        return EXIT.OK;
      }),
    );
}
