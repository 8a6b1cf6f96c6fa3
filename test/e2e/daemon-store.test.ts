/**
 * The `store` setting picks where the daemon keeps its data (and so the
 * backend): --store, then DISCUE_STORE, then the config key `store`, then
 * $DISCUE_HOME/data. `daemon status` says which; a nats:// or tls:// URL is
 * a NATS JetStream cluster (test/e2e/nats-hosts.test.ts runs one).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectError, expectJsonError, ok } from '../helpers/discue.js';
import { freePort } from '../helpers/nats.js';
import { Sandbox } from '../helpers/sandbox.js';

interface Status {
  dataDir: string;
  store: { kind: string; location: string };
}

describe('the store setting', () => {
  let sb: Sandbox;
  beforeEach(() => {
    sb = new Sandbox();
  });
  afterEach(async () => {
    await sb.dispose();
  });

  const status = async (): Promise<Status> => JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as Status;
  /** A daemon started as asked, its store read back, then stopped. */
  const storeOf = async (args: string[], env: Record<string, string> = {}): Promise<Status['store']> => {
    const started = await sb.run(['daemon', 'start', ...args], { env });
    expect(started.code, started.stderr).toBe(0);
    const { store } = await status();
    await ok(sb, ['daemon', 'stop']);
    return store;
  };
  const dir = (name: string): string => join(sb.dir, name);

  it('is $DISCUE_HOME/data by default, and daemon status shows the backend and where', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const s = await status();
    expect(s.store).toEqual({ kind: 'leveldb', location: join(sb.home, 'data') });
    expect(s.dataDir).toBe(join(sb.home, 'data'));
    expect(await ok(sb, ['daemon', 'status'])).toMatch(new RegExp(`^store: +leveldb ${join(sb.home, 'data')}$`, 'm'));
  });

  it('goes flag > DISCUE_STORE > config key > default, and the data goes where it says', async () => {
    await ok(sb, ['config', 'set', 'store', dir('from-config')]);
    expect(await storeOf([])).toEqual({ kind: 'leveldb', location: dir('from-config') });
    expect(await storeOf([], { DISCUE_STORE: dir('from-env') })).toEqual({ kind: 'leveldb', location: dir('from-env') });
    expect(await storeOf(['--store', dir('from-flag')], { DISCUE_STORE: dir('from-env') })).toEqual({ kind: 'leveldb', location: dir('from-flag') });
    // --data-dir, the older name, is the flag too.
    expect(await storeOf(['--data-dir', dir('old-flag')], { DISCUE_STORE: dir('from-env') })).toEqual({ kind: 'leveldb', location: dir('old-flag') });
    for (const name of ['from-config', 'from-env', 'from-flag', 'old-flag']) expect(readdirSync(dir(name)), name).toContain('CURRENT');
    expect(existsSync(join(sb.home, 'data'))).toBe(false);
    // doctor, with no daemon to ask, checks the disk where the setting puts the data.
    const checks = JSON.parse(await ok(sb, ['doctor', '--json'])) as { check: string; message: string }[];
    expect(checks.find((c) => c.check === 'disk')?.message).toContain(`(${dir('from-config')})`);

    // An auto-started daemon reads the same setting (here the config key), and a relative path is the caller's.
    await ok(sb, ['config', 'set', 'store', 'rel']);
    expect(JSON.parse(await ok(sb, ['config', 'get', 'store', '--json']))).toMatchObject({ value: dir('rel'), source: 'config' });
    await ok(sb, ['queue', 'create', 'q']);
    expect((await status()).store.location).toBe(dir('rel'));
  });

  it('a nats:// store whose servers do not answer fails with BACKEND_UNAVAILABLE (exit 3), from the flag, the environment or the config, the password masked', async () => {
    const port = await freePort();
    const url = `nats://me:s3cret@127.0.0.1:${port}`;
    const foreground = await sb.run(['daemon', 'start', '--foreground', '--store', url]);
    expectError(foreground, 3, 'BACKEND_UNAVAILABLE');
    expect(foreground.stderr).toContain(`nats://me:***@127.0.0.1:${port}`);
    expect(foreground.stderr).not.toContain('s3cret');
    expectError(await sb.run(['daemon', 'start', '--foreground'], { env: { DISCUE_STORE: url } }), 3, 'BACKEND_UNAVAILABLE');
    await ok(sb, ['config', 'set', 'store', url]);
    await ok(sb, ['config', 'set', 'store.replicas', '3']);
    // Beside the store's URL, not in place of it.
    expect(JSON.parse(await ok(sb, ['config', 'get', 'store', '--json']))).toMatchObject({ value: url, source: 'config' });
    // A command that would auto-start one fails, naming the cause from the daemon's log.
    const auto = await sb.run(['queue', 'list']);
    expectError(auto, 3, 'DAEMON_START_FAILED');
    expect(auto.stderr).toContain('BACKEND_UNAVAILABLE');
    expect(existsSync(join(sb.home, 'data'))).toBe(false);
    expectError(await sb.run(['daemon', 'start', '--store', dir('d'), '--replicas', '3']), 2, 'USAGE');
    expectError(await sb.run(['daemon', 'start', '--store', url, '--replicas', '9']), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['config', 'set', 'store.replicas', '0']), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['config', 'set', 'store', 'nats://a:4222,ftp://b']), 2, 'INVALID_ARGUMENT');
  });

  it('a store that is neither a directory nor a NATS URL is INVALID_ARGUMENT (exit 2), naming where it came from', async () => {
    const flag = await sb.run(['daemon', 'start', '--store', 'ftp://x']);
    expectError(flag, 2, 'INVALID_ARGUMENT');
    expect(flag.stderr).toContain('--store');
    const env = await sb.run(['daemon', 'start'], { env: { DISCUE_STORE: 'http://x' } });
    expectError(env, 2, 'INVALID_ARGUMENT');
    expect(env.stderr).toContain('DISCUE_STORE');
    expectError(await sb.run(['config', 'set', 'store', ' ']), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['daemon', 'start', '--store', dir('a'), '--data-dir', dir('b')]), 2, 'USAGE');
    expect(existsSync(sb.home)).toBe(false);
  });
});
