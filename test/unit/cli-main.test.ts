import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';

/** Every visible command, with its path ("queue create"). */
function commands(command: Command, path: string[] = []): [string, Command][] {
  const visible = command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  return [[path.join(' '), command], ...visible.flatMap((c) => commands(c, [...path, c.name()]))];
}

function helpOf(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  command.outputHelp();
  return text;
}

describe('the command line program', () => {
  const all = commands(buildProgram());

  it('has the commands of the spec', () => {
    const names = all.map(([path]) => path);
    for (const path of [
      'daemon start',
      'daemon stop',
      'daemon status',
      'daemon restart',
      'daemon logs',
      'queue create',
      'queue list',
      'queue show',
      'queue update',
      'queue delete',
      'queue purge',
      'publish',
      'messages list',
      'messages get',
      'messages delete',
    ]) {
      expect(names).toContain(path);
    }
  });

  // The commands of the broker's core (issue 2); the others are checked with their own features.
  const core = all.filter(([path]) => /^(daemon|queue|publish|messages)\b/.test(path));

  it.each(core.map(([path, command]) => [path, command] as const))(
    '`discue %s --help` shows worked examples',
    (path, command) => {
      const help = helpOf(command);
      expect(help).toContain('Examples:');
      expect(help).toMatch(new RegExp(`\\n  discue ${path.split(' ')[0]}`));
    },
  );

  it('offers the global options everywhere', () => {
    const help = helpOf(buildProgram());
    for (const option of ['--json', '--socket <path>', '--no-color', '--quiet', '--version', '--help']) expect(help).toContain(option);
    expect(help).toContain('Exit codes:');
  });
});
