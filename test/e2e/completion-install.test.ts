/**
 * The completion install lines a new user copies (from the README's "Shell
 * completion" section and from `discue completion --help`) work in a fresh
 * home where none of the target directories exist yet: each one, run in bash,
 * leaves the script the package ships at the place the shell loads it from.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ok } from '../helpers/discue.js';
import { runBlock } from '../helpers/readme.js';
import { ROOT, useSandbox } from '../helpers/sandbox.js';

const SHIPPED = {
  bash: join(ROOT, 'completions', 'discue.bash'),
  zsh: join(ROOT, 'completions', '_discue'),
  fish: join(ROOT, 'completions', 'discue.fish'),
} as const;
type Shell = keyof typeof SHIPPED;

/** `mkdir -p DIR && discue completion SHELL > FILE` lines, with the shell and the file (~ as the home). */
function installLines(text: string): { line: string; shell: Shell; file: string }[] {
  return [...text.matchAll(/(mkdir -p [^`\n#]*?discue completion (bash|zsh|fish) > ([^\s`]+))/g)].map((m) => ({
    line: m[1]!,
    shell: m[2] as Shell,
    file: m[3]!,
  }));
}

describe('completion install lines, in a fresh home', () => {
  const sb = useSandbox('discue-compl-install-');

  async function expectInstalls(lines: { line: string; shell: Shell; file: string }[]): Promise<void> {
    expect(lines.map((l) => l.shell).sort()).toEqual(['bash', 'fish', 'zsh']);
    for (const { line, shell, file } of lines) {
      const target = file.replace(/^~/, sb.env.HOME!);
      // The directory is not there before: the line has to make it.
      expect(existsSync(target), target).toBe(false);
      const result = await runBlock(sb, `${line}\n`);
      expect(result.code, `${line}\n${result.stderr}`).toBe(0);
      expect(readFileSync(target, 'utf8'), line).toBe(readFileSync(SHIPPED[shell], 'utf8'));
    }
  }

  it("the README's bash, zsh and fish lines create their directory and install the shipped script", { timeout: 60_000 }, async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Shell completion\n');
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    await expectInstalls(installLines(section));
  });

  it('the lines in `discue completion --help` do the same', { timeout: 60_000 }, async () => {
    await expectInstalls(installLines(await ok(sb, ['completion', '--help'])));
  });
});
