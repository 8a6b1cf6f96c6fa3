/**
 * man/discue.1 is generated from the commander program (`npm run man`), like
 * the completion scripts; when a command or option changes and the page is not
 * regenerated, this fails. The page also has to be valid roff.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manPage } from '../../src/cli/manpage.js';
import { buildProgram } from '../../src/cli/program.js';
import { ROOT } from '../helpers/sandbox.js';

const FILE = join(ROOT, 'man', 'discue.1');

describe('man/discue.1', () => {
  it('is what the generator makes of the program (run `npm run man` if not)', () => {
    expect(readFileSync(FILE, 'utf8')).toBe(manPage(buildProgram()));
  });

  it('documents every command and global option, and is shipped in the package', () => {
    const page = readFileSync(FILE, 'utf8');
    for (const command of ['discue publish', 'discue messages list', 'discue doctor', 'discue version', 'discue listener add']) {
      expect(page).toContain(`.SS "${command.replace(/-/g, '\\-')}`);
    }
    for (const flag of ['\\-\\-json', '\\-\\-socket', '\\-\\-quiet', '\\-\\-no\\-color']) expect(page).toContain(`\\fB${flag}\\fR`);
    expect(page).toContain('QUEUE_NOT_FOUND');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[]; man: string[] };
    expect(pkg.files).toContain('man/');
    expect(pkg.man).toEqual(['./man/discue.1']);
  });

  it('renders with groff without warnings', () => {
    const warnings = execFileSync('groff', ['-man', '-ww', '-z', FILE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(warnings).toBe('');
    const text = execFileSync('groff', ['-man', '-Tascii', '-P-cbou', FILE], { encoding: 'utf8' });
    expect(text).toMatch(/discue messages list \[options\] <queue>/);
    expect(text).toContain('EXIT STATUS');
  });
});
