import { describe, expect, it } from 'vitest';
import { splitCommand } from '../../src/protocol/argv.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('splitCommand: argv without a shell', () => {
  it('splits plain words on any run of blanks', () => {
    expect(splitCommand('./notify.sh --verbose')).toEqual(['./notify.sh', '--verbose']);
    expect(splitCommand('  jq   -r\t.id  ')).toEqual(['jq', '-r', '.id']);
  });

  it('keeps quoted text as one word, quotes removed, and joins adjacent parts', () => {
    expect(splitCommand(`echo 'a b' "c d" e'f'"g"`)).toEqual(['echo', 'a b', 'c d', 'efg']);
    expect(splitCommand(`printf '%s\\n'`)).toEqual(['printf', '%s\\n']);
    expect(splitCommand(`x '' ""`)).toEqual(['x', '', '']);
  });

  it('takes single quotes literally, shell characters included', () => {
    expect(splitCommand(`sh -c 'echo $(id) | cat; ls > f'`)).toEqual(['sh', '-c', 'echo $(id) | cat; ls > f']);
  });

  it('handles backslash escapes outside and inside double quotes', () => {
    expect(splitCommand('a\\ b')).toEqual(['a b']);
    expect(splitCommand('echo \\|')).toEqual(['echo', '|']);
    expect(splitCommand('"say \\"hi\\" \\\\ \\$HOME"')).toEqual(['say "hi" \\ $HOME']);
    // A backslash before another character in double quotes stays, as in sh.
    expect(splitCommand('"a\\nb"')).toEqual(['a\\nb']);
  });

  it('refuses shell operators and substitutions with INVALID_ARGUMENT', () => {
    for (const line of ['a | b', 'a|b', 'a && b', 'a; b', 'a > out', 'a < in', 'a &', '(a)', 'echo `id`', 'echo $(id)', 'echo ${HOME}', 'echo "$(id)"', 'echo "`id`"']) {
      expect(code(() => splitCommand(line)), line).toBe('INVALID_ARGUMENT');
    }
  });

  it('refuses unterminated quotes, a trailing backslash and an empty command', () => {
    for (const line of [`echo 'abc`, 'echo "abc', 'echo \\', '', '   ', `''x`.slice(3)]) {
      expect(code(() => splitCommand(line)), JSON.stringify(line)).toBe('INVALID_ARGUMENT');
    }
  });

  it('allows a plain $ that starts no substitution', () => {
    expect(splitCommand('echo $HOME')).toEqual(['echo', '$HOME']);
    expect(splitCommand('grep -E a$')).toEqual(['grep', '-E', 'a$']);
  });
});
