/**
 * The bash completion script: case tables generated from the model, and a
 * function that walks the words before the cursor through them.
 */
import { walk } from './model.js';
import type { CommandModel, CompletionModel, ValueKind } from './model.js';
import { header, sq } from './shell.js';

function kindWord(value: ValueKind | undefined): string {
  if (value === undefined) return '';
  return value.kind === 'words' ? `words:${value.words.join(' ')}` : value.kind;
}

export function bashScript(model: CompletionModel): string {
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
