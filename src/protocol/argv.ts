/**
 * Splits a command line into argv the way a POSIX shell would for plain
 * words and quotes, without running a shell. Shell operators (pipes,
 * redirections, substitutions) are refused rather than passed on as odd
 * arguments: whoever wants them says --shell.
 */
import { DiscueError } from './errors.js';

const OPERATORS = new Set(['|', '&', ';', '<', '>', '(', ')', '`']);

export function splitCommand(line: string): string[] {
  const args: string[] = [];
  let current = '';
  let inWord = false;
  let i = 0;
  const fail = (why: string): never => {
    throw new DiscueError('INVALID_ARGUMENT', `cannot split command ${JSON.stringify(line)}: ${why}`);
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) args.push(current);
      current = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) fail('unterminated single quote');
      current += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        if (i >= line.length) fail('unterminated double quote');
        const d = line[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) {
          current += line[i + 1];
          i += 2;
        } else if (d === '$' || d === '`') {
          fail(`"${d}" inside double quotes needs a shell; use --shell, or single quotes for a literal`);
        } else {
          current += d;
          i++;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= line.length) fail('trailing backslash');
      current += line[i + 1];
      inWord = true;
      i += 2;
    } else if (OPERATORS.has(c) || (c === '$' && (line[i + 1] === '(' || line[i + 1] === '{'))) {
      fail(`"${c}" is a shell operator; run it through a shell with --shell`);
    } else {
      current += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) args.push(current);
  if (args.length === 0) fail('empty command');
  return args;
}
