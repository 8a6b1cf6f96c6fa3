/**
 * The published package: `npm pack` of a clean copy of the source (its
 * `prepare` script builds dist/), installed into an empty prefix, runs.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT, Sandbox, collect } from '../helpers/sandbox.js';

const run = promisify(execFile);
/** What a clean checkout has that the package is built from (never dist/, which pack must build itself). */
const SKIP = new Set(['node_modules', 'dist', '.git', 'test']);

describe('npm pack', () => {
  let sb: Sandbox;
  beforeEach(() => {
    sb = new Sandbox('discue-pack-');
  });
  afterEach(async () => {
    await sb.dispose();
  });

  it('builds a tarball that installs into an empty prefix and runs', { timeout: 240_000 }, async () => {
    const source = join(sb.dir, 'src');
    mkdirSync(source);
    for (const entry of readdirSync(ROOT)) {
      if (SKIP.has(entry) || entry.endsWith('.tgz')) continue;
      cpSync(join(ROOT, entry), join(source, entry), { recursive: true });
    }
    // The build tools come from the repository's own install.
    symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');

    // npm runs with the real environment (its cache), not the sandbox's HOME.
    const npmEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
    const out = join(sb.dir, 'out');
    mkdirSync(out);
    await run('npm', ['pack', '--pack-destination', out], { cwd: source, env: npmEnv, maxBuffer: 16 * 1024 * 1024 });
    const tarballs = readdirSync(out).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);
    const tarball = join(out, tarballs[0]!);

    const { stdout: listing } = await run('tar', ['-tzf', tarball]);
    const files = listing.split('\n');
    expect(files).toContain('package/bin/discue.js');
    expect(files).toContain('package/dist/cli/main.js');
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/package.json');
    expect(files).toContain('package/man/discue.1');
    expect(files.some((f) => f.startsWith('package/test/'))).toBe(false);

    const prefix = join(sb.dir, 'prefix');
    mkdirSync(prefix);
    await run('npm', ['install', '--prefix', prefix, '--prefer-offline', '--no-save', tarball], {
      cwd: prefix,
      env: npmEnv,
      maxBuffer: 16 * 1024 * 1024,
    });

    const discue = join(prefix, 'node_modules', '.bin', 'discue');
    const exec = async (args: string[]) => {
      const child = spawn(discue, args, { cwd: sb.dir, env: sb.env, stdio: ['pipe', 'pipe', 'pipe'] });
      return collect(child, { timeoutMs: 60_000 });
    };
    const version = await exec(['--version']);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const list = await exec(['queue', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
    expect((await exec(['queue', 'create', 'packed'])).code).toBe(0);
    const published = await exec(['publish', 'packed', '--data', 'from the tarball']);
    expect(published.code, published.stderr).toBe(0);
    const messages = await exec(['messages', 'list', 'packed', '--json']);
    expect(JSON.parse(messages.stdout)).toMatchObject([{ id: published.stdout.trim(), data: 'from the tarball' }]);
    // The daemon it started is the installed one.
    const status = JSON.parse((await exec(['daemon', 'status', '--json'])).stdout) as { pid: number };
    const { stdout: cmdline } = await run('cat', [`/proc/${status.pid}/cmdline`]);
    expect(cmdline).toContain(prefix);
    expect((await exec(['daemon', 'stop'])).code).toBe(0);
  });
});
