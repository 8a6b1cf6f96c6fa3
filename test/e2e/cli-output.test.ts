/**
 * CLI conventions through the real binary: data on stdout, diagnostics on
 * stderr, --quiet, --version/--help, usage errors, and colour only on a TTY
 * (a real one, made by util-linux `script`) unless NO_COLOR or --no-color.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectError, ok } from '../helpers/discue.js';
import { BIN, collect, ROOT, useSandbox } from '../helpers/sandbox.js';
import type { RunResult } from '../helpers/sandbox.js';

const ESC = '\x1b[';
const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

describe('CLI output conventions', () => {
  const sb = useSandbox();

  /** Runs discue on a pseudo-terminal; stdout and stderr both arrive on the terminal. */
  function onTty(args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
    const command = [process.execPath, BIN, ...args].map(quote).join(' ');
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      cwd: sb.dir,
      env: { ...sb.env, NO_COLOR: undefined, TERM: 'xterm', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return collect(child, { timeoutMs: 60_000 });
  }

  it('prints --version from package.json and --help with examples, exit 0', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await ok(sb, ['--version'])).toBe(`${pkg.version}\n`);
    expect(await ok(sb, ['-V'])).toBe(`${pkg.version}\n`);
    const help = await ok(sb, ['--help']);
    expect(help).toContain('Examples:');
    expect(help).toContain('Exit codes:');
    expect(await ok(sb, ['publish', '--help'])).toContain('discue publish orders');
    // Neither starts a daemon.
    expect(sb.daemonPid()).toBeUndefined();
  });

  it('answers unknown commands, options and missing arguments with exit 2 [USAGE]', async () => {
    expectError(await sb.run(['nonsense']), 2, 'USAGE');
    expectError(await sb.run(['queue', 'create']), 2, 'USAGE');
    expectError(await sb.run(['queue', 'list', '--bogus']), 2, 'USAGE');
    expectError(await sb.run(['publish', 'q', '{"data":"a"}', 'extra']), 2, 'USAGE');
    expect(sb.daemonPid()).toBeUndefined();
  });

  it('keeps data on stdout and diagnostics on stderr; --quiet keeps only data', async () => {
    const empty = await sb.run(['queue', 'list']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toBe('');
    expect(empty.stderr).toContain('no queues yet');

    const created = await sb.run(['queue', 'create', 'q']);
    expect(created.stdout).toContain('created queue q');
    expect((await sb.run(['queue', 'create', 'r', '-q'])).stdout).toBe('');
    expect((await sb.run(['queue', 'create', 's', '--json'])).stdout).toMatch(/^\{"name":"s"/);

    const published = await sb.run(['publish', 'q', '--data', 'x', '-q']);
    expect(published.stdout).toMatch(/^[0-9A-Z]{26}\n$/);
    expect(published.stderr).toBe('');
    const quietEmpty = await sb.run(['messages', 'list', 'r', '-q']);
    expect([quietEmpty.code, quietEmpty.stdout, quietEmpty.stderr]).toEqual([0, '', '']);
  });

  it('colours output on a terminal, never with NO_COLOR, --no-color, --json or a pipe', async () => {
    await ok(sb, ['daemon', 'start']);
    const coloured = await onTty(['queue', 'create', 'c1']);
    expect(coloured.stdout).toContain('created queue c1');
    expect(coloured.stdout).toContain(ESC);
    const error = await onTty(['queue', 'create', 'c1']);
    expect(error.stdout).toContain('[QUEUE_EXISTS]');
    expect(error.stdout).toContain(ESC);

    for (const [args, env] of [
      [['queue', 'create', 'c2'], { NO_COLOR: '1' }],
      [['queue', 'create', 'c3', '--no-color'], {}],
      [['queue', 'create', 'c1', '--no-color'], {}],
      [['queue', 'show', 'c1', '--json'], {}],
    ] as const) {
      const result = await onTty([...args], env);
      expect(result.stdout, args.join(' ')).not.toContain(ESC);
      expect(result.stdout.length).toBeGreaterThan(0);
    }
    // Piped: the sandbox's default run, with NO_COLOR removed.
    const piped = await sb.run(['queue', 'create', 'c4'], { env: { NO_COLOR: undefined } });
    expect(piped.stdout).toContain('created queue c4');
    expect(piped.stdout).not.toContain(ESC);
  });
});
