/**
 * completions/ holds the scripts `discue completion <shell>` prints. They are
 * generated from the commander program (`npm run completions`); when a
 * command or option changes and the files are not regenerated, this fails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { completionScript } from '../../src/cli/completion/script.js';
import type { Shell } from '../../src/cli/completion/shell.js';
import { buildProgram } from '../../src/cli/program.js';
import { ROOT } from '../helpers/sandbox.js';

const FILES: Record<Shell, string> = {
  bash: 'completions/discue.bash',
  zsh: 'completions/_discue',
  fish: 'completions/discue.fish',
};

describe('completions/ matches the generator', () => {
  for (const [shell, file] of Object.entries(FILES) as [Shell, string][]) {
    it(`${file} is what \`discue completion ${shell}\` prints (run \`npm run completions\` if not)`, () => {
      const committed = readFileSync(join(ROOT, file), 'utf8');
      expect(committed).toBe(completionScript(buildProgram(), shell));
    });
  }
});
