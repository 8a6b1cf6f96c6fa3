/**
 * Conventions people bring from gh and docker, through the real binary: a
 * one-line note when a command starts the daemon (on a terminal only), and
 * subcommand --help listing the global options it inherits.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ok, statusPid } from '../helpers/discue.js';
import { BIN, collect, useSandbox } from '../helpers/sandbox.js';
import type { RunResult } from '../helpers/sandbox.js';

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

describe('CLI conventions from gh and docker', () => {
  const sb = useSandbox();

  /** Runs discue on a pseudo-terminal (util-linux `script`); stdout and stderr both arrive on it. */
  function onTty(args: string[]): Promise<RunResult> {
    const command = [process.execPath, BIN, ...args].map(quote).join(' ');
    const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: sb.dir, env: { ...sb.env, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
    return collect(child, { timeoutMs: 60_000 });
  }

  it('auto-starting the daemon says "started daemon pid N" on a terminal, once', async () => {
    const first = await onTty(['queue', 'create', 'orders']);
    expect(first.code).toBe(0);
    const pid = await statusPid(sb);
    expect(first.stdout).toMatch(new RegExp(`^started daemon pid ${pid}\\r?\\n`));
    expect(first.stdout).toContain('created queue orders');
    // It runs now: nothing to say.
    const second = await onTty(['queue', 'create', 'payments']);
    expect(second.code).toBe(0);
    expect(second.stdout).not.toContain('started daemon');
  });

  it('says nothing about the start when piped, with --json or with --quiet on a terminal', async () => {
    const piped = await sb.run(['queue', 'create', 'orders']);
    expect(piped.code).toBe(0);
    expect(sb.daemonPid()).toBeDefined();
    expect(piped.stderr).toBe('');
    await ok(sb, ['daemon', 'stop']);

    const json = await onTty(['queue', 'create', 'payments', '--json']);
    expect(json.code).toBe(0);
    expect(json.stdout).not.toContain('started daemon');
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'payments' });
    await ok(sb, ['daemon', 'stop']);

    const quiet = await onTty(['queue', 'create', 'audit', '-q']);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toBe('');
  });

  it('-q on queue list and listener list prints names and ids only; --fields picks fields there too', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['queue', 'create', 'audit', '--retention', '7d']);
    const added = JSON.parse(await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', 'cat', '--name', 'printer', '--json'])) as { id: string };
    expect(await ok(sb, ['queue', 'list', '-q'])).toBe('audit\norders\n');
    expect(await ok(sb, ['listener', 'list', '--quiet'])).toBe(`${added.id}\n`);

    expect(await ok(sb, ['queue', 'list', '--fields', 'name,retentionMs'])).toBe('NAME    RETENTIONMS\naudit   604800000\norders  -\n');
    expect(JSON.parse(await ok(sb, ['queue', 'list', '--fields', 'name,messages', '--json']))).toEqual([
      { name: 'audit', messages: 0 },
      { name: 'orders', messages: 0 },
    ]);
    expect(await ok(sb, ['listener', 'list', '--fields', 'name'])).toBe('printer\n');
    expect(JSON.parse(await ok(sb, ['listener', 'list', '--fields', 'name,state,command', '--json']))).toEqual([
      { name: 'printer', state: 'active', command: ['cat'] },
    ]);
    const bad = await sb.run(['queue', 'list', '--fields', 'nme']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown field "nme"; did you mean "name"? [INVALID_ARGUMENT]');
  });

  it('subcommand --help lists the inherited global options', async () => {
    for (const args of [['queue', 'create', '--help'], ['messages', 'list', '--help'], ['daemon', '--help'], ['doctor', '--help']]) {
      const help = await ok(sb, args);
      const inherited = help.slice(help.indexOf('Global Options:'));
      expect(help, args.join(' ')).toContain('Global Options:');
      for (const flag of ['--json', '--socket <path>', '--no-color', '-q, --quiet', '-V, --version']) expect(inherited).toContain(flag);
    }
    // The top level has them as its own options, not twice.
    const top = await ok(sb, ['--help']);
    expect(top).not.toContain('Global Options:');
    expect(top).toContain('--socket <path>');
  });
});
