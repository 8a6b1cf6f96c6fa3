/**
 * The command tree as shell completion and the man page see it, read from
 * the commander program itself, so a new command or option completes as soon
 * as it is registered. What a value completes to is what the command
 * declared: commander's `.choices()`, or `declareValue` (src/cli/values.ts).
 */
import type { Argument, Command, Option } from 'commander';
import { declaredValue } from '../values.js';
import type { ValueKind } from '../values.js';

export type { ValueKind } from '../values.js';

export interface OptionModel {
  /** Every spelling, short first: ['-q', '--quiet']. */
  flags: string[];
  description: string;
  /** undefined: a flag that takes no value. */
  value: ValueKind | undefined;
  /** The placeholder of the value in --help (`<queue>` → queue). */
  valueName: string;
  repeatable: boolean;
}

export interface ArgumentModel {
  name: string;
  description: string;
  required: boolean;
  variadic: boolean;
  value: ValueKind;
}

export interface CommandModel {
  /** Canonical names from the root, e.g. ['queue', 'show']; [] for the program. */
  path: string[];
  name: string;
  aliases: string[];
  description: string;
  /** The command's own options and its -h/--help; the program's options are in globals. */
  options: OptionModel[];
  arguments: ArgumentModel[];
  commands: CommandModel[];
}

export interface CompletionModel {
  program: string;
  root: CommandModel;
  /** The program's options (--json, --socket, ...): commander accepts them after any subcommand too. */
  globals: OptionModel[];
}

const TEXT: ValueKind = { kind: 'text' };
const PLACEHOLDER = /[<[]([^>\]]+)[>\]]/;

/** Choices first (commander checks them), then what the command declared; else free text. */
function valueOf(target: Option | Argument): ValueKind {
  if (target.argChoices) return { kind: 'words', words: [...target.argChoices] };
  return declaredValue(target).kind ?? TEXT;
}

function optionModel(option: Option): OptionModel {
  return {
    flags: [option.short, option.long].filter((f): f is string => typeof f === 'string'),
    description: option.description,
    value: option.required || option.optional ? valueOf(option) : undefined,
    valueName: PLACEHOLDER.exec(option.flags)?.[1] ?? 'value',
    repeatable: option.variadic || declaredValue(option).repeatable === true,
  };
}

function argumentModel(argument: Argument): ArgumentModel {
  return {
    name: argument.name(),
    description: argument.description,
    required: argument.required,
    variadic: argument.variadic,
    value: valueOf(argument),
  };
}

function commandModel(command: Command, path: string[], isRoot: boolean): CommandModel {
  // The program's own options are the globals; of them, the root keeps only its help.
  const own = command
    .createHelp()
    .visibleOptions(command)
    .filter((o) => !isRoot || o.long === '--help');
  const subcommands = command.commands.filter((c) => !isHidden(c));
  const model: CommandModel = {
    path,
    name: command.name(),
    aliases: command.aliases(),
    description: command.description(),
    options: own.map(optionModel),
    arguments: command.registeredArguments.map(argumentModel),
    commands: subcommands.map((c) => commandModel(c, [...path, c.name()], false)),
  };
  if (isRoot && subcommands.length > 0) {
    // commander's implicit `help [command]`, which is not in command.commands.
    model.commands.push({
      path: ['help'],
      name: 'help',
      aliases: [],
      description: 'show help for a command',
      options: [],
      arguments: [
        {
          name: 'command',
          description: 'the command to explain',
          required: false,
          variadic: false,
          value: { kind: 'words', words: subcommands.map((c) => c.name()) },
        },
      ],
      commands: [],
    });
  }
  return model;
}

function isHidden(command: Command): boolean {
  // commander keeps `{ hidden: true }` in a private field; Help.visibleCommands reads the same one.
  return (command as unknown as { _hidden?: boolean })._hidden === true;
}

/** The command tree as the scripts see it. */
export function completionModel(program: Command): CompletionModel {
  let root = program;
  while (root.parent) root = root.parent;
  // Every command has its own -h/--help (in its options); the rest of the program's options are global.
  const globals = root
    .createHelp()
    .visibleOptions(root)
    .filter((o) => o.long !== '--help')
    .map(optionModel);
  return { program: root.name(), root: commandModel(root, [], true), globals };
}

/** Every command of the tree, the root first. */
export function walk(command: CommandModel): CommandModel[] {
  return [command, ...command.commands.flatMap(walk)];
}
