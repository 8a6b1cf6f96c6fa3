/**
 * The scripts are generated from the commander program, not written by hand:
 * every command, alias and option the program has shows up in each of them,
 * and what the program hides does not.
 */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { completionModel } from '../../src/cli/completion/model.js';
import type { CommandModel } from '../../src/cli/completion/model.js';
import { completionScript } from '../../src/cli/completion/script.js';
import { buildProgram } from '../../src/cli/program.js';

interface Visible {
  path: string[];
  command: Command;
}

function visible(command: Command, path: string[] = []): Visible[] {
  return command.commands
    .filter((c) => !(c as unknown as { _hidden?: boolean })._hidden)
    .flatMap((c) => [{ path: [...path, c.name()], command: c }, ...visible(c, [...path, c.name()])]);
}

function find(root: CommandModel, path: string[]): CommandModel | undefined {
  let node: CommandModel | undefined = root;
  for (const name of path) node = node?.commands.find((c) => c.name === name);
  return node;
}

describe('completion model of the real program', () => {
  const program = buildProgram();
  const model = completionModel(program);
  const commands = visible(program);

  it('has every visible command with its aliases, options and arguments', () => {
    expect(commands.length).toBeGreaterThan(20);
    for (const { path, command } of commands) {
      const node = find(model.root, path);
      expect(node, path.join(' ')).toBeDefined();
      expect(node!.aliases).toEqual(command.aliases());
      const flags = node!.options.flatMap((o) => o.flags);
      for (const option of command.options.filter((o) => !o.hidden)) {
        if (option.long) expect(flags, `${path.join(' ')} ${option.long}`).toContain(option.long);
        if (option.short) expect(flags, `${path.join(' ')} ${option.short}`).toContain(option.short);
      }
      expect(node!.arguments.map((a) => a.name)).toEqual(command.registeredArguments.map((a) => a.name()));
    }
  });

  it('leaves out the hidden __complete command', () => {
    expect(model.root.commands.map((c) => c.name)).not.toContain('__complete');
    expect(program.commands.map((c) => c.name())).toContain('__complete');
  });

  it('knows which options take values, and the global ones', () => {
    const globals = Object.fromEntries(model.globals.flatMap((o) => o.flags.map((f) => [f, o.value !== undefined])));
    expect(globals).toEqual({
      '--json': false,
      '--socket': true,
      '--no-color': false,
      '-q': false,
      '--quiet': false,
      '-V': false,
      '--version': false,
    });
    const add = find(model.root, ['listener', 'add'])!;
    const takes = (flag: string) => add.options.find((o) => o.flags.includes(flag))?.value;
    expect(takes('--queue')).toEqual({ kind: 'queues' });
    expect(takes('--from')).toEqual({ kind: 'words', words: ['new', 'all'] });
    expect(takes('--shell')).toBeUndefined();
    expect(add.options.some((o) => o.flags.includes('--help'))).toBe(true);
  });

  it('completes existing queue and listener names where the commands take them, not where a name is new', () => {
    const arg = (path: string[], i = 0) => find(model.root, path)!.arguments[i]!.value.kind;
    for (const path of [['publish'], ['queue', 'show'], ['queue', 'update'], ['queue', 'delete'], ['queue', 'purge'], ['queue', 'rename'], ['messages', 'list'], ['messages', 'get'], ['messages', 'delete'], ['listen']]) {
      expect(arg(path), path.join(' ')).toBe('queues');
    }
    for (const path of [['listener', 'show'], ['listener', 'remove'], ['listener', 'pause'], ['listener', 'resume']]) {
      expect(arg(path), path.join(' ')).toBe('listeners');
    }
    expect(arg(['queue', 'create'])).toBe('text');
    expect(arg(['queue', 'rename'], 1)).toBe('text');
    expect(arg(['queue', 'rename'], 1)).toBe('text');
    expect(arg(['messages', 'get'], 1)).toBe('text');
    expect(find(model.root, ['deliveries', 'list'])!.options.find((o) => o.flags.includes('--listener'))!.value).toEqual({ kind: 'listeners' });
  });

  it('puts every command name and alias into each script', () => {
    for (const shell of ['bash', 'zsh', 'fish'] as const) {
      const script = completionScript(program, shell);
      for (const { path, command } of commands) {
        for (const name of [command.name(), ...command.aliases()]) {
          const where = `${shell}: ${path.join(' ')} as ${name}`;
          // bash and fish look subcommands up as 'PARENT|WORD'; zsh dispatches with (name|alias) _discue__...
          if (shell === 'zsh') expect(script, where).toMatch(new RegExp(`\\((?:[\\w-]+\\|)*${name}(?:\\|[\\w-]+)*\\) _discue`));
          else expect(script, where).toContain(`'${path.slice(0, -1).join(' ')}|${name}'`);
        }
      }
      expect(script).not.toMatch(/['|(]__complete['|)]/);
    }
  });
});

describe('value kinds come from the command definitions, not from names', () => {
  it('reads choices and declared kinds; an undeclared value is free text whatever it is called', async () => {
    const { Argument, Command, Option } = await import('commander');
    const { declareValue, QUEUES } = await import('../../src/cli/values.js');
    const program = new Command('demo');
    program
      .command('go')
      .addArgument(declareValue(new Argument('<target>'), { kind: QUEUES }))
      .argument('[queue]')
      .addOption(new Option('--mode <m>').choices(['fast', 'slow']))
      .addOption(declareValue(new Option('--tag <t>'), { repeatable: true }))
      .option('--queue <queue>')
      .option('--schema <file>');
    const go = completionModel(program).root.commands.find((c) => c.name === 'go')!;
    const option = (flag: string) => go.options.find((o) => o.flags.includes(flag))!;
    expect(go.arguments.map((a) => a.value)).toEqual([{ kind: 'queues' }, { kind: 'text' }]);
    expect(option('--mode').value).toEqual({ kind: 'words', words: ['fast', 'slow'] });
    expect(option('--tag').repeatable).toBe(true);
    expect(option('--queue').value).toEqual({ kind: 'text' });
    expect(option('--schema').value).toEqual({ kind: 'text' });
  });
});
