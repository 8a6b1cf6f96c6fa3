import type { Command } from 'commander';
import { EXIT } from '../../protocol/errors.js';
import { action, examples } from '../action.js';
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
    .description('print the effective value of a key')
    .argument('<key>')
    .action(
      action(async (ctx, [key]) => {
        const setting = resolveSetting(configKey(String(key)).key, readConfig());
        if (ctx.json) ctx.printJson({ key, ...setting });
        else ctx.print(setting.value);
        return EXIT.OK;
      }),
    );

  config
    .command('set')
    .description('store a value in the config file')
    .argument('<key>')
    .argument('<value>')
    .action(
      action(async (ctx, [key, value]) => {
        const spec = configKey(String(key));
        const parsed = spec.parse(String(value));
        const store = await open();
        store.set(spec.key, parsed);
        if (ctx.json) ctx.printJson({ key: spec.key, value: parsed });
        else ctx.done(`${spec.key} = ${String(parsed)}`);
        return EXIT.OK;
      }),
    );

  config
    .command('unset')
    .description('remove a value from the config file (back to the default)')
    .argument('<key>')
    .action(
      action(async (ctx, [key]) => {
        const spec = configKey(String(key));
        const store = await open();
        store.delete(spec.key);
        if (ctx.json) ctx.printJson({ key: spec.key, unset: true });
        else ctx.done(`${spec.key} unset`);
        return EXIT.OK;
      }),
    );

  config
    .command('list')
    .alias('ls')
    .description('every key with its effective value and where it comes from')
    .action(
      action(async (ctx) => {
        const file = readConfig();
        const rows = CONFIG_KEYS.map((k) => ({ key: k.key, ...resolveSetting(k.key, file), env: k.env }));
        if (ctx.json) ctx.printJson(rows);
        else ctx.print(table(['KEY', 'VALUE', 'FROM', 'ENV'], rows.map((r) => [r.key, r.value, r.source, r.env])));
        return EXIT.OK;
      }),
    );

  config
    .command('path')
    .description('print where the config file lives')
    .action(
      action(async (ctx) => {
        if (ctx.json) ctx.printJson({ path: configPath() });
        else ctx.print(configPath());
        return EXIT.OK;
      }),
    );
}

async function open() {
  const { default: Conf } = await import('conf');
  // Dotted keys ("listener.timeout") are nested objects in the file.
  return new Conf<Record<string, unknown>>({ cwd: configDir(), configName: 'config', projectName: 'discue' });
}
