/**
 * The zsh completion script: one _arguments function per command, generated
 * from the model.
 */
import { walk } from './model.js';
import type { CommandModel, CompletionModel, OptionModel, ValueKind } from './model.js';
import { header, sq } from './shell.js';

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

export function zshScript(model: CompletionModel): string {
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
