import type { Command } from 'commander';
import { EXIT } from '../../protocol/errors.js';
import { action, examples } from '../action.js';
import { ago, table } from '../format.js';

const SCOPES = 'admin, publish, publish:QUEUE, read, read:QUEUE, listeners, metrics';

export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description('tokens of the HTTP API: create (shown once), list, revoke')
    .addHelpText(
      'after',
      examples(
        'discue token create --name ci --scope publish:orders',
        'discue token create --name grafana --scope metrics',
        'discue token list',
        'discue token revoke ci',
      ),
    );

  token
    .command('create')
    .description('create a token and print it, once (the daemon keeps only its hash)')
    .requiredOption('--name <name>', 'the token\'s name: 1-64 characters of a-z A-Z 0-9 . _ -')
    .requiredOption('--scope <scope>', `what it may do (repeatable): ${SCOPES}`, (value: string, previous: string[] = []) => [...previous, value])
    .addHelpText(
      'after',
      examples(
        'discue token create --name ci --scope publish:orders',
        'discue token create --name dashboard --scope read --scope listeners',
        'TOKEN=$(discue token create --name ci --scope publish -q)',
      ),
    )
    .action(
      action(async (ctx, _args, opts) => {
        const client = await ctx.connect();
        const created = await client.request('token.create', { name: String(opts.name), scopes: opts.scope as string[] });
        if (ctx.json) ctx.printJson(created);
        else {
          // The token on stdout alone, so $(...) takes it; the rest is a note on stderr.
          ctx.print(created.token);
          ctx.note(`token ${created.name} (${created.scopes.join(' ')}): shown this once; send it as Authorization: Bearer …`);
        }
        return EXIT.OK;
      }),
    );

  token
    .command('list')
    .alias('ls')
    .description('list tokens: name, scopes, age (never the token)')
    .action(
      action(async (ctx) => {
        const client = await ctx.connect();
        const tokens = await client.request('token.list', {});
        if (ctx.json) ctx.printJson(tokens);
        else if (tokens.length === 0) ctx.note('no tokens; create one with `discue token create --name N --scope S`');
        else ctx.print(table(['NAME', 'SCOPES', 'CREATED'], tokens.map((t) => [t.name, t.scopes.join(' '), ago(t.createdAt)])));
        return EXIT.OK;
      }),
    );

  token
    .command('revoke')
    .description('revoke a token: requests with it get 401 from now on')
    .argument('<name>', 'the token\'s name')
    .action(
      action(async (ctx, [name]) => {
        const client = await ctx.connect();
        const result = await client.request('token.revoke', { name: String(name) });
        if (ctx.json) ctx.printJson({ revoked: result.name });
        else ctx.done(`revoked token ${result.name}`);
        return EXIT.OK;
      }),
    );
}
