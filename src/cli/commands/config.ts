import { Argument } from 'commander';
import type { Command } from 'commander';
import { DiscueError, EXIT } from '../../protocol/errors.js';
import { action, examples } from '../action.js';
import { declareValue } from '../values.js';
import { CONFIG_KEYS, configDir, configKey, configPath, readConfig, resolveSetting } from '../config.js';
import { table } from '../format.js';

export function registerConfig(program: Command): void {
  const config = program
    .command('config')
    .description('user defaults: output, colour, socket, listener timeout and attempts (flag > env > config > default)')
    .addHelpText(
      'after',
      examples(
        'discue config set output json',
        'discue config set listener.maxAttempts 5',
        'discue config get socket',
        'discue config list',
        'discue config unset output',
      ) +
        '\nKeys:\n' +
        CONFIG_KEYS.map((k) => `  ${k.key.padEnd(22)} ${k.description} (env ${k.env}, default ${k.default})`).join('\n') +
        '\n',
    );

  config
    .command('get')
    .addHelpText('after', examples('discue config get listener.timeout'))
    .description('print the effective value of a key')
    .addArgument(keyArgument())
    .action(
      action(async (ctx, [key]) => {
        // ctx.config: a broken file was reported as a warning and counts as empty.
        const setting = resolveSetting(configKey(String(key)).key, ctx.config);
        if (ctx.json) ctx.printJson({ key, ...setting });
        else ctx.print(setting.value);
        return EXIT.OK;
      }),
    );

  config
    .command('set')
    .addHelpText('after', examples('discue config set output json'))
    .description('store a value in the config file')
    .addArgument(keyArgument())
    .argument('<value>')
    .action(
      action(async (ctx, [key, value]) => {
        const spec = configKey(String(key));
        const parsed = spec.parse(String(value));
        await write((store) => store.set(spec.key, parsed), flat(spec.key));
        if (ctx.json) ctx.printJson({ key: spec.key, value: parsed });
        else ctx.done(`${spec.key} = ${String(parsed)}`);
        return EXIT.OK;
      }),
    );

  config
    .command('unset')
    .addHelpText('after', examples('discue config unset output'))
    .description('remove a value from the config file (back to the default)')
    .addArgument(keyArgument())
    .action(
      action(async (ctx, [key]) => {
        const spec = configKey(String(key));
        await write((store) => {
          store.delete(spec.key);
          // Unsetting the last listener.* key leaves no empty "listener": {} behind.
          const parent = spec.key.includes('.') ? spec.key.slice(0, spec.key.lastIndexOf('.')) : undefined;
          const rest = parent === undefined ? undefined : store.get(parent);
          if (parent !== undefined && typeof rest === 'object' && rest !== null && Object.keys(rest).length === 0) store.delete(parent);
        }, flat(spec.key));
        if (ctx.json) ctx.printJson({ key: spec.key, unset: true });
        else ctx.done(`${spec.key} unset`);
        return EXIT.OK;
      }),
    );

  config
    .command('list')
    .addHelpText('after', examples('discue config list --json'))
    .alias('ls')
    .description('every key with its effective value and where it comes from')
    .action(
      action(async (ctx) => {
        const rows = CONFIG_KEYS.map((k) => ({ key: k.key, ...resolveSetting(k.key, ctx.config), env: k.env }));
        if (ctx.json) ctx.printJson(rows);
        else ctx.print(table(['KEY', 'VALUE', 'FROM', 'ENV'], rows.map((r) => [r.key, r.value, r.source, r.env])));
        return EXIT.OK;
      }),
    );

  config
    .command('path')
    .addHelpText('after', examples('discue config path'))
    .description('print where the config file lives')
    .action(
      action(async (ctx) => {
        if (ctx.json) ctx.printJson({ path: configPath() });
        else ctx.print(configPath());
        return EXIT.OK;
      }),
    );
}

type Store = import('conf').default<Record<string, unknown>>;

/**
 * `store` is a value and `store.replicas` etc. sit beside it: written as
 * flat keys ("store.replicas": 3), since nesting them would replace the
 * store's URL by an object. readConfig reads both shapes.
 */
function flat(key: string): boolean {
  return key.startsWith('store.');
}

/** Changes the config file through conf (atomic write; dotted keys are nested objects in the file, except flat ones). */
async function write(change: (store: Store) => void, flatKeys = false): Promise<void> {
  // conf would throw a bare SyntaxError on a broken file (or write keys into
  // an array); readConfig says which file is wrong and how to fix it.
  readConfig();
  const { default: Conf } = await import('conf');
  try {
    change(new Conf<Record<string, unknown>>({ cwd: configDir(), configName: 'config', projectName: 'discue', accessPropertiesByDotNotation: !flatKeys }));
  } catch (err) {
    throw new DiscueError('HOME_NOT_WRITABLE', `cannot write the config file ${configPath()}: ${(err as Error).message}`, { cause: err });
  }
}

/** A config key: checked by configKey() (INVALID_ARGUMENT, with the keys there are), completed from the same table. */
function keyArgument(): Argument {
  return declareValue(new Argument('<key>'), { kind: { kind: 'words', words: CONFIG_KEYS.map((k) => k.key) } });
}
