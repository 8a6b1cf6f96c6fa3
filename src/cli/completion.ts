/**
 * Shell completion scripts, generated from the commander program itself, so a
 * new command or option completes as soon as it is registered (and the files
 * in completions/ are regenerated with `npm run completions`; a test fails
 * when they drift).
 *
 * The scripts know the command tree statically. Only queue and listener names
 * are dynamic: the scripts ask `discue __complete queues|listeners`, which
 * answers from a running daemon within about a second and prints nothing
 * (never starting a daemon) when there is none.
 */
import type { Argument, Command, Option } from 'commander';
import { CONFIG_KEYS } from './config.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export function isShell(value: string): value is Shell {
  return (SHELLS as readonly string[]).includes(value);
}

/** What a value (of an option or a positional argument) completes to. */
export type ValueKind =
  | { kind: 'queues' }
  | { kind: 'listeners' }
  | { kind: 'files' }
  | { kind: 'dirs' }
  | { kind: 'commands' }
  | { kind: 'words'; words: string[] }
  /** Free text (a URL, a name, a duration): no suggestions. */
  | { kind: 'text' };

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

const QUEUES: ValueKind = { kind: 'queues' };
const LISTENERS: ValueKind = { kind: 'listeners' };
const TEXT: ValueKind = { kind: 'text' };
const PLACEHOLDER = /[<[]([^>\]]+)[>\]]/;

/**
 * Options whose values are a fixed set the command checks itself (the
 * commands do not declare them with commander's .choices(), which would be
 * read first). By long name, in every command that has them.
 */
const OPTION_WORDS: Record<string, string[]> = {
  '--from': ['new', 'all'],
  '--state': ['pending', 'failed', 'dead', 'delivered'],
};

/**
 * Which positional arguments name an existing queue or listener. By the names
 * the commands give their arguments: `<queue>`/`[queues...]` anywhere, `<name>`
 * under `queue` (except `queue create`, which makes a new one), `<ref>` under
 * `listener`.
 */
function argumentValue(path: string[], argument: Argument): ValueKind {
  const name = argument.name();
  if (argument.argChoices) return { kind: 'words', words: [...argument.argChoices] };
  if (path.length === 1 && path[0] === 'completion' && name === 'shell') return { kind: 'words', words: [...SHELLS] };
  if (name === 'queue' || name === 'queues') return QUEUES;
  if (path[0] === 'queue' && path[1] !== 'create' && name === 'name') return QUEUES;
  if (path[0] === 'listener' && name === 'ref') return LISTENERS;
  if (path[0] === 'config' && name === 'key') return { kind: 'words', words: CONFIG_KEYS.map((k) => k.key) };
  return TEXT;
}

/** How an option's value completes: --queue and --listener from the daemon, files by the placeholder (`<file>`). */
function optionValue(option: Option): ValueKind | undefined {
  if (!option.required && !option.optional) return undefined;
  if (option.argChoices) return { kind: 'words', words: [...option.argChoices] };
  if (option.long === '--queue') return QUEUES;
  if (option.long === '--listener') return LISTENERS;
  const words = option.long === undefined ? undefined : OPTION_WORDS[option.long];
  if (words) return { kind: 'words', words };
  const placeholder = PLACEHOLDER.exec(option.flags)?.[1] ?? '';
  if (placeholder === 'file' || placeholder === 'path') return { kind: 'files' };
  if (placeholder === 'dir') return { kind: 'dirs' };
  if (placeholder === 'command') return { kind: 'commands' };
  return TEXT;
}

function optionModel(option: Option): OptionModel {
  return {
    flags: [option.short, option.long].filter((f): f is string => typeof f === 'string'),
    description: option.description,
    value: optionValue(option),
    valueName: PLACEHOLDER.exec(option.flags)?.[1] ?? 'value',
    repeatable: option.variadic || /\brepeat/i.test(option.description),
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
    arguments: command.registeredArguments.map((a) => ({
      name: a.name(),
      description: a.description,
      required: a.required,
      variadic: a.variadic,
      value: argumentValue(path, a),
    })),
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

function walk(command: CommandModel): CommandModel[] {
  return [command, ...command.commands.flatMap(walk)];
}

export function completionScript(program: Command, shell: Shell): string {
  const model = completionModel(program);
  switch (shell) {
    case 'bash':
      return bashScript(model);
    case 'zsh':
      return zshScript(model);
    case 'fish':
      return fishScript(model);
  }
}

/** How each shell installs the script; printed in the scripts' headers. */
const INSTALL: Record<Shell, string[]> = {
  bash: [
    'Install: put this file in ~/.local/share/bash-completion/completions/discue',
    '(loaded on demand by the bash-completion package), or add to ~/.bashrc:',
    '  source <(discue completion bash)',
  ],
  zsh: [
    'Install: put this file, named _discue, in a directory of $fpath (before',
    'compinit runs in ~/.zshrc), e.g. ~/.zfunc with `fpath=(~/.zfunc $fpath)`;',
    'or add to ~/.zshrc after compinit:',
    '  source <(discue completion zsh)',
  ],
  fish: ['Install: put this file in ~/.config/fish/completions/discue.fish'],
};

function header(model: CompletionModel, shell: Shell): string {
  return [
    `# ${shell} completion for ${model.program}.`,
    `# Generated by \`${model.program} completion ${shell}\` from the command definitions; do not edit.`,
    `# Queue and listener names come from the running daemon (\`${model.program} __complete\`),`,
    '# which never starts one.',
    '#',
    ...INSTALL[shell].map((l) => `# ${l}`),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------
// bash

/** A single-quoted shell word ('it'\''s'); bash, zsh and POSIX sh agree on this. */
function sq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function kindWord(value: ValueKind | undefined): string {
  if (value === undefined) return '';
  return value.kind === 'words' ? `words:${value.words.join(' ')}` : value.kind;
}

function bashScript(model: CompletionModel): string {
  const fn = `_${model.program}`;
  const commands = walk(model.root);
  const key = (c: CommandModel) => c.path.join(' ');
  const lines: string[] = [header(model, 'bash')];

  lines.push(
    `# Names from the daemon: ${fn}_names queues|listeners. Passes on a --socket`,
    '# given on the command line, so the names come from the daemon it will talk to.',
    `${fn}_names() {`,
    `  local -a args=(__complete "$1")`,
    `  [[ -n $${fn}_socket ]] && args+=(--socket "$${fn}_socket")`,
    `  command ${model.program} "\${args[@]}" 2>/dev/null`,
    '}',
    '',
    `# ${fn}_sub PATH WORD: sets ${fn}_r to the path of subcommand WORD of PATH, or empty.`,
    `${fn}_sub() {`,
    '  case "$1|$2" in',
  );
  for (const parent of commands) {
    for (const child of parent.commands) {
      const patterns = [child.name, ...child.aliases].map((n) => sq(`${key(parent)}|${n}`)).join('|');
      lines.push(`    ${patterns}) ${fn}_r=${sq(key(child))} ;;`);
    }
  }
  lines.push(`    *) ${fn}_r='' ;;`, '  esac', '}', '');

  lines.push(
    `# ${fn}_value PATH OPTION: sets ${fn}_r to how the option's value completes`,
    '# (queues, listeners, files, dirs, commands, words:..., text), or empty if it takes none.',
    `${fn}_value() {`,
    '  case "$1|$2" in',
  );
  for (const command of commands) {
    for (const option of command.options) {
      if (option.value === undefined) continue;
      const patterns = option.flags.map((f) => sq(`${key(command)}|${f}`)).join('|');
      lines.push(`    ${patterns}) ${fn}_r=${sq(kindWord(option.value))} ;;`);
    }
  }
  for (const option of model.globals) {
    if (option.value === undefined) continue;
    lines.push(`    ${option.flags.map((f) => `*${sq(`|${f}`)}`).join('|')}) ${fn}_r=${sq(kindWord(option.value))} ;;`);
  }
  lines.push(`    *) ${fn}_r='' ;;`, '  esac', '}', '');

  lines.push(
    `# ${fn}_words PATH: sets ${fn}_c to its subcommands, ${fn}_o to its options,`,
    `# ${fn}_a to how each positional argument completes, ${fn}_v=1 if the last repeats.`,
    `${fn}_words() {`,
    `  ${fn}_c='' ${fn}_o='' ${fn}_a=() ${fn}_v=0`,
    '  case "$1" in',
  );
  for (const command of commands) {
    const body: string[] = [];
    // Only canonical names are offered (`pu<TAB>` has one answer); aliases are still followed by _sub.
    const subs = command.commands.map((c) => c.name);
    if (subs.length > 0) body.push(`${fn}_c=${sq(subs.join(' '))}`);
    const flags = command.options.flatMap((o) => o.flags.filter((f) => f.startsWith('--')).concat(o.flags.filter((f) => !f.startsWith('--'))));
    if (flags.length > 0) body.push(`${fn}_o=${sq(flags.join(' '))}`);
    if (command.arguments.length > 0) {
      body.push(`${fn}_a=(${command.arguments.map((a) => sq(kindWord(a.value))).join(' ')})`);
      if (command.arguments[command.arguments.length - 1]!.variadic) body.push(`${fn}_v=1`);
    }
    if (body.length > 0) lines.push(`    ${sq(key(command))}) ${body.join(' ')} ;;`);
  }
  const globalFlags = model.globals.flatMap((o) => o.flags.filter((f) => f.startsWith('--')).concat(o.flags.filter((f) => !f.startsWith('--'))));
  lines.push('  esac', `  ${fn}_o+=" "${sq(globalFlags.join(' '))}`, '}', '');

  lines.push(
    `# ${fn}_complete KIND CUR: fills COMPREPLY with the values of KIND that start with CUR.`,
    `${fn}_complete() {`,
    '  local cur=$2 line',
    '  COMPREPLY=()',
    '  case $1 in',
    `    queues|listeners) while IFS= read -r line; do [[ -n $line && $line == "$cur"* ]] && COMPREPLY+=("$line"); done < <(${fn}_names "$1") ;;`,
    '    files) compopt -o filenames 2>/dev/null; while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -f -- "$cur") ;;',
    '    dirs) compopt -o filenames 2>/dev/null; while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -d -- "$cur") ;;',
    '    commands) while IFS= read -r line; do COMPREPLY+=("$line"); done < <(compgen -c -- "$cur") ;;',
    '    words:*) COMPREPLY=($(compgen -W "${1#words:}" -- "$cur")) ;;',
    '  esac',
    '}',
    '',
  );

  lines.push(
    `${fn}() {`,
    `  local cur=\${COMP_WORDS[COMP_CWORD]} path='' pos=0 i word pending='' ended=''`,
    `  local ${fn}_r ${fn}_c ${fn}_o ${fn}_v ${fn}_socket=''`,
    `  local -a ${fn}_a`,
    '  COMPREPLY=()',
    '  # Walk the words before the cursor: follow subcommands, skip option values',
    '  # (also `--opt=value`, which COMP_WORDBREAKS splits into `--opt`, `=`, `value`),',
    '  # count positional arguments.',
    '  for (( i = 1; i < COMP_CWORD; i++ )); do',
    '    word=${COMP_WORDS[i]}',
    '    if [[ -n $pending ]]; then',
    '      [[ $word == = ]] && continue',
    `      [[ $pending == --socket ]] && ${fn}_socket=$word`,
    "      pending=''",
    '      continue',
    '    fi',
    '    if [[ -z $ended && $word == -* ]]; then',
    '      case $word in',
    "        --) ended=1 ;;",
    `        --socket=*) ${fn}_socket=\${word#--socket=} ;;`,
    '        --*=*) ;;',
    `        *) ${fn}_value "$path" "$word"; [[ -n $${fn}_r ]] && pending=$word ;;`,
    '      esac',
    '      continue',
    '    fi',
    `    ${fn}_sub "$path" "$word"`,
    `    if [[ -z $ended && -n $${fn}_r ]]; then path=$${fn}_r; else (( pos++ )); fi`,
    '  done',
    '',
    '  # The value of an option: `--opt <TAB>`, `--opt=<TAB>` (split or not).',
    '  if [[ $cur == = && -n $pending ]]; then',
    '    cur=\'\'',
    '  fi',
    '  if [[ -n $pending ]]; then',
    `    ${fn}_value "$path" "$pending"`,
    `    ${fn}_complete "$${fn}_r" "$cur"`,
    '    return 0',
    '  fi',
    '  if [[ -z $ended && $cur == --*=* ]]; then',
    `    ${fn}_value "$path" "\${cur%%=*}"`,
    `    ${fn}_complete "$${fn}_r" "\${cur#*=}"`,
    '    COMPREPLY=("${COMPREPLY[@]/#/${cur%%=*}=}")',
    '    return 0',
    '  fi',
    '',
    `  ${fn}_words "$path"`,
    '  if [[ -z $ended && $cur == -* ]]; then',
    `    COMPREPLY=($(compgen -W "$${fn}_o" -- "$cur"))`,
    '    return 0',
    '  fi',
    `  if [[ -n $${fn}_c ]]; then`,
    `    COMPREPLY=($(compgen -W "$${fn}_c" -- "$cur"))`,
    '    return 0',
    '  fi',
    `  local n=\${#${fn}_a[@]}`,
    `  (( pos >= n && ${fn}_v == 1 )) && pos=$(( n - 1 ))`,
    `  (( pos < n )) && ${fn}_complete "\${${fn}_a[pos]}" "$cur"`,
    '  return 0',
    '}',
    '',
    `complete -F ${fn} ${model.program}`,
  );
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// zsh

/** Text inside an _arguments `[description]` or a `_describe` entry. */
function zshDesc(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\[/g, '\\[').replace(/\]/g, '\\]');
}

function zshAction(value: ValueKind, program: string): string {
  switch (value.kind) {
    case 'queues':
      return `_${program}_queues`;
    case 'listeners':
      return `_${program}_listeners`;
    case 'files':
      return '_files';
    case 'dirs':
      return '_files -/';
    case 'commands':
      return '_command_names -e';
    case 'words':
      return `(${value.words.join(' ')})`;
    case 'text':
      return ' ';
  }
}

function zshOptionSpecs(options: OptionModel[], program: string): string[] {
  return options.map((option) => {
    const desc = `[${zshDesc(option.description)}]`;
    // -n+: value in the same word or the next; --name=: after `=` or in the next word.
    const spell = (f: string) => (option.value === undefined ? f : f.startsWith('--') ? `${f}=` : `${f}+`);
    const value = option.value === undefined ? '' : `:${option.valueName.replace(/:/g, '\\:')}:${zshAction(option.value, program)}`;
    const star = option.repeatable ? '*' : '';
    if (option.flags.length === 1) return sq(`${star}${spell(option.flags[0]!)}${desc}${value}`);
    const exclusion = option.repeatable ? '' : `(${option.flags.join(' ')})`;
    return `${sq(exclusion + star)}{${option.flags.map(spell).join(',')}}${sq(desc + value)}`;
  });
}

function zshFunction(program: string, command: CommandModel): string {
  return [`_${program}`, ...command.path].join('__').replace(/-/g, '_');
}

function zshScript(model: CompletionModel): string {
  const p = model.program;
  const lines: string[] = [`#compdef ${p}`, header(model, 'zsh')];
  lines.push(
    '# Names from the daemon; passes on a --socket given on the command line.',
    `_${p}_names() {`,
    '  local -a names args expl',
    `  local socket=\${opt_args[--socket]:-$_${p}_socket}`,
    `  args=(__complete $1)`,
    `  [[ -n $socket ]] && args+=(--socket $socket)`,
    `  names=(\${(f)"$(command ${p} $args 2>/dev/null)"})`,
    '  _wanted $1 expl $2 compadd -a names',
    '}',
    `_${p}_queues() { _${p}_names queues queue }`,
    `_${p}_listeners() { _${p}_names listeners listener }`,
    '',
  );
  for (const command of walk(model.root)) {
    const name = zshFunction(p, command);
    const specs = [...zshOptionSpecs(command.options, p), ...zshOptionSpecs(model.globals, p)];
    const body: string[] = [`${name}() {`];
    if (command.commands.length > 0) {
      body.push(
        '  local curcontext=$curcontext state state_descr line ret=1',
        '  typeset -A opt_args',
        '  _arguments -C \\',
        ...specs.map((s) => `    ${s} \\`),
        `    '1: :->command' \\`,
        `    '*:: :->args' && ret=0`,
      );
      if (command.path.length === 0) {
        // Seen by _${p}_names in the subcommands' functions (zsh scopes dynamically).
        body.push(`  local _${p}_socket=\${opt_args[--socket]}`);
      }
      body.push('  case $state in', '    (command)', '      local -a commands=(');
      for (const child of command.commands) {
        body.push(`        ${sq(`${child.name}:${child.description}`)}`);
      }
      body.push(
        '      )',
        `      _describe -t commands ${sq(`${[p, ...command.path].join(' ')} command`)} commands && ret=0`,
        '      ;;',
        '    (args)',
        `      curcontext=\${curcontext%:*:*}:${[p, ...command.path].join('-')}-$words[1]:`,
        '      case $words[1] in',
      );
      for (const child of command.commands) {
        const fn = zshFunction(p, child);
        body.push(`        (${[child.name, ...child.aliases].join('|')}) ${fn} && ret=0 ;;`);
      }
      body.push('      esac', '      ;;', '  esac', '  return ret', '}', '');
    } else {
      const args = command.arguments.map((a, i) => {
        const action = zshAction(a.value, p);
        if (a.variadic) return sq(`*:${a.name}:${action}`);
        return sq(`${i + 1}:${a.required ? '' : ':'}${a.name}:${action}`);
      });
      const all = [...specs, ...args];
      body.push('  _arguments \\', ...all.map((s, i) => `    ${s}${i < all.length - 1 ? ' \\' : ''}`), '}', '');
    }
    lines.push(...body);
  }
  lines.push(
    '# Autoloaded from $fpath, the file is the body of _discue; sourced, it registers itself.',
    `if [[ $funcstack[1] == _${p} ]]; then`,
    `  _${p} "$@"`,
    'else',
    `  compdef _${p} ${p}`,
    'fi',
  );
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// fish

/** A single-quoted fish string: only \ and ' are special inside. */
function fq(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function fishValue(value: ValueKind, program: string): string {
  switch (value.kind) {
    case 'queues':
      return `-f -a ${fq(`(__${program}_names queues)`)}`;
    case 'listeners':
      return `-f -a ${fq(`(__${program}_names listeners)`)}`;
    case 'files':
    case 'dirs':
      return '-F';
    case 'commands':
      return `-f -a ${fq('(__fish_complete_command)')}`;
    case 'words':
      return `-f -a ${fq(value.words.join(' '))}`;
    case 'text':
      return '-f';
  }
}

function fishOption(program: string, option: OptionModel, condition: string | undefined): string {
  const parts = [`complete -c ${program}`];
  if (condition !== undefined) parts.push(`-n ${fq(condition)}`);
  for (const flag of option.flags) {
    if (flag.startsWith('--')) parts.push(`-l ${flag.slice(2)}`);
    else if (flag.length === 2) parts.push(`-s ${flag.slice(1)}`);
    else parts.push(`-o ${flag.slice(1)}`);
  }
  if (option.value !== undefined) parts.push('-r', fishValue(option.value, program));
  parts.push(`-d ${fq(option.description)}`);
  return parts.join(' ');
}

function fishScript(model: CompletionModel): string {
  const p = model.program;
  const commands = walk(model.root);
  const key = (c: CommandModel) => c.path.join(' ');
  const lines: string[] = [header(model, 'fish')];

  lines.push(`# __${p}_sub PATH WORD: prints the path of subcommand WORD of PATH, if it is one.`, `function __${p}_sub`, '    switch "$argv[1]|$argv[2]"');
  for (const parent of commands) {
    for (const child of parent.commands) {
      lines.push(`        case ${[child.name, ...child.aliases].map((n) => fq(`${key(parent)}|${n}`)).join(' ')}`, `            echo ${fq(key(child))}`);
    }
  }
  lines.push('    end', 'end', '');

  lines.push(`# __${p}_takes_value PATH OPTION: true if OPTION of PATH takes a value.`, `function __${p}_takes_value`, '    switch "$argv[1]|$argv[2]"');
  const valued: string[] = [];
  for (const command of commands) {
    for (const option of command.options) {
      if (option.value !== undefined) valued.push(...option.flags.map((f) => fq(`${key(command)}|${f}`)));
    }
  }
  for (const option of model.globals) {
    if (option.value !== undefined) valued.push(...option.flags.map((f) => fq(`*|${f}`)));
  }
  lines.push(`        case ${valued.join(' ')}`, '            return 0', '    end', '    return 1', 'end', '');

  lines.push(
    '# Prints "PATH|N": the command path the line has reached, and how many',
    '# positional arguments it already has.',
    `function __${p}_state`,
    '    set -l tokens (commandline -opc)',
    '    set -e tokens[1]',
    "    set -l path ''",
    '    set -l pos 0',
    '    set -l pending 0',
    '    set -l ended 0',
    '    for word in $tokens',
    '        if test $pending = 1',
    '            set pending 0',
    '            continue',
    '        end',
    '        if test $ended = 0; and string match -q -- \'-*\' "$word"',
    '            if test "$word" = --',
    '                set ended 1',
    `            else if not string match -q -- '*=*' "$word"; and __${p}_takes_value "$path" "$word"`,
    '                set pending 1',
    '            end',
    '            continue',
    '        end',
    `        set -l sub (__${p}_sub "$path" "$word")`,
    '        if test $ended = 0; and test -n "$sub"',
    '            set path $sub',
    '        else',
    '            set pos (math $pos + 1)',
    '        end',
    '    end',
    '    echo "$path|$pos"',
    'end',
    '',
    `# __${p}_in PATH: the line is at command PATH.`,
    `function __${p}_in`,
    `    string match -q -- "$argv[1]|*" (__${p}_state)`,
    'end',
    '',
    `# __${p}_arg PATH N [more]: completing positional argument N of PATH (or any later one, with "more").`,
    `function __${p}_arg`,
    `    set -l state (string split '|' -- (__${p}_state))`,
    '    test "$state[1]" = "$argv[1]"; or return 1',
    '    test $state[2] -eq $argv[2]; and return 0',
    '    test (count $argv) -ge 3; and test $state[2] -gt $argv[2]',
    'end',
    '',
    '# Names from the daemon; passes on a --socket given on the command line.',
    `function __${p}_names`,
    '    set -l args __complete $argv[1]',
    '    set -l tokens (commandline -opc)',
    '    for i in (seq (count $tokens))',
    '        if test "$tokens[$i]" = --socket; and test $i -lt (count $tokens)',
    '            set args __complete $argv[1] --socket $tokens[(math $i + 1)]',
    "        else if string match -q -- '--socket=*' \"$tokens[$i]\"",
    "            set args __complete $argv[1] --socket (string replace -- '--socket=' '' $tokens[$i])",
    '        end',
    '    end',
    `    command ${p} $args 2>/dev/null`,
    'end',
    '',
    `complete -c ${p} -f`,
    '',
    '# Options of every command',
    ...model.globals.map((o) => fishOption(p, o, undefined)),
    '',
  );

  for (const command of commands) {
    const at = fq(key(command));
    const block: string[] = [];
    for (const child of command.commands) {
      block.push(`complete -c ${p} -n ${fq(`__${p}_arg ${at} 0`)} -a ${fq(child.name)} -d ${fq(child.description)}`);
    }
    for (const option of command.options) {
      block.push(fishOption(p, option, `__${p}_in ${at}`));
    }
    command.arguments.forEach((argument, i) => {
      if (argument.value.kind === 'text') return; // `complete -f` above: nothing to offer
      const more = argument.variadic ? ' more' : '';
      block.push(`complete -c ${p} -n ${fq(`__${p}_arg ${at} ${i}${more}`)} ${fishValue(argument.value, p)}`);
    });
    if (block.length > 0) lines.push(`# ${[p, ...command.path].join(' ')}`, ...block, '');
  }
  return lines.join('\n');
}
