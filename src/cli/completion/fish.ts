/**
 * The fish completion script: `complete` lines per command, with conditions
 * that find the command path the line has reached.
 */
import { walk } from './model.js';
import type { CommandModel, CompletionModel, OptionModel, ValueKind } from './model.js';
import { header } from './shell.js';

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

export function fishScript(model: CompletionModel): string {
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
