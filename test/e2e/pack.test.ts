/**
 * The published package: `npm pack` of a clean copy of the source (its
 * `prepare` script builds dist/), installed into an empty prefix, runs; and
 * the two ways the README gives to get `discue` on PATH, `npm install -g`
 * of the tarball and `npm install -g .` in a clone, each into its own
 * --prefix so the machine's global npm is never touched. One pack per file.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, ROOT, useSandbox } from '../helpers/sandbox.js';
import type { RunResult } from '../helpers/sandbox.js';

const run = promisify(execFile);
/** What a clean checkout has that the package is built from (never dist/, which pack must build itself). */
const SKIP = new Set(['node_modules', 'dist', '.git', 'test']);
// npm runs with the real environment (its cache), not the sandbox's HOME; offline
// is fine, the dependencies are in the cache from the repository's own install.
const npmEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

describe('npm pack', () => {
  let work: string;
  let source: string;
  let tarball: string;
  const sb = useSandbox('discue-pack-');

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'discue-pack-'));
    source = join(work, 'src');
    mkdirSync(source);
    for (const entry of readdirSync(ROOT)) {
      if (SKIP.has(entry) || entry.endsWith('.tgz')) continue;
      cpSync(join(ROOT, entry), join(source, entry), { recursive: true });
    }
    // The build tools come from the repository's own install.
    symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
    const out = join(work, 'out');
    mkdirSync(out);
    await run('npm', ['pack', '--pack-destination', out], { cwd: source, env: npmEnv, maxBuffer: 16 * 1024 * 1024 });
    const tarballs = readdirSync(out).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);
    tarball = join(out, tarballs[0]!);
  }, 240_000);
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  /** Runs `discue` found on PATH (the prefix's bin first), as a user's shell would. */
  const onPath = (bin: string) => (args: string[]): Promise<RunResult> => {
    const child = spawn('discue', args, {
      cwd: sb.dir,
      env: { ...sb.env, PATH: `${bin}:${sb.env.PATH}` },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return collect(child, { timeoutMs: 60_000 });
  };

  /** --version, then a publish/list round-trip through a daemon the installed copy started. */
  async function roundTrip(exec: (args: string[]) => Promise<RunResult>, installed: string): Promise<void> {
    const version = await exec(['--version']);
    expect(version.code, version.stderr).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // The bundle's own idea of the version (fixed at build) is package.json's.
    const versionJson = await exec(['version', '--json']);
    expect(versionJson.code, versionJson.stderr).toBe(0);
    expect(JSON.parse(versionJson.stdout)).toMatchObject({ cli: { version: version.stdout.trim() } });
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
    expect(cmdline).toContain(installed);
    expect((await exec(['daemon', 'stop'])).code).toBe(0);
  }

  it('builds a tarball with bin, dist and the README, without tests', async () => {
    const { stdout: listing } = await run('tar', ['-tzf', tarball]);
    const files = listing.split('\n');
    expect(files).toContain('package/bin/discue.cjs');
    expect(files).toContain('package/dist/cli/main.js');
    // The CLI runs from its bundle; the code cache is made on the user's machine by its own Node.
    expect(files).toContain('package/dist/cli/bundle.cjs');
    expect(files.some((f) => f.endsWith('.cache'))).toBe(false);
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/package.json');
    expect(files).toContain('package/README.md');
    expect(files).toContain('package/man/discue.1');
    expect(files.some((f) => f.startsWith('package/completions/'))).toBe(true);
    expect(files.some((f) => f.startsWith('package/test/'))).toBe(false);
  });

  it('installs into an empty prefix as a dependency and runs', { timeout: 240_000 }, async () => {
    const prefix = join(sb.dir, 'prefix');
    mkdirSync(prefix);
    await run('npm', ['install', '--prefix', prefix, '--prefer-offline', '--no-save', tarball], {
      cwd: prefix,
      env: npmEnv,
      maxBuffer: 16 * 1024 * 1024,
    });
    const discue = join(prefix, 'node_modules', '.bin', 'discue');
    await roundTrip((args) => collect(spawn(discue, args, { cwd: sb.dir, env: sb.env, stdio: ['pipe', 'pipe', 'pipe'] }), { timeoutMs: 60_000 }), prefix);
    // The first run wrote the CLI's code cache beside the bundle, for the runs after it.
    expect(existsSync(join(prefix, 'node_modules', 'discue', 'dist', 'cli', 'bundle.cjs.cache'))).toBe(true);
  });

  it('npm install -g <tarball> puts a working discue on PATH', { timeout: 240_000 }, async () => {
    const prefix = join(sb.dir, 'global');
    mkdirSync(prefix);
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', tarball], { cwd: sb.dir, env: npmEnv, maxBuffer: 16 * 1024 * 1024 });
    const bin = join(prefix, 'bin');
    expect(readdirSync(bin)).toContain('discue');
    // A copy, not a link to anywhere else: the installed package holds the code.
    expect(realpathSync(join(bin, 'discue'))).toBe(join(prefix, 'lib', 'node_modules', 'discue', 'bin', 'discue.cjs'));
    await roundTrip(onPath(bin), join(prefix, 'lib', 'node_modules', 'discue'));
  });

  it('npm install -g . in a clone links discue on PATH to the clone', { timeout: 240_000 }, async () => {
    const prefix = join(sb.dir, 'linked');
    mkdirSync(prefix);
    // The copy's node_modules is a link to this repository's own: npm would
    // reify the global link's dependencies into it, pruning the dev tools
    // (vitest, typescript) out of the install the suite is running from. The
    // copy gets its own node_modules instead, as a clone's `npm install` makes
    // (production dependencies are what the linked command needs).
    unlinkSync(join(source, 'node_modules'));
    await run('npm', ['install', '--prefer-offline', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: source,
      env: npmEnv,
      maxBuffer: 16 * 1024 * 1024,
    });
    // --ignore-scripts: `prepare` built dist/ in this copy already (for the pack),
    // as the README's `npm install` does in a clone; building it twice proves nothing.
    await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', '.'], {
      cwd: source,
      env: npmEnv,
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(readlinkSync(join(prefix, 'lib', 'node_modules', 'discue'))).toMatch(/src$/);
    expect(realpathSync(join(prefix, 'bin', 'discue'))).toBe(join(realpathSync(source), 'bin', 'discue.cjs'));
    await roundTrip(onPath(join(prefix, 'bin')), source);
  });
});
