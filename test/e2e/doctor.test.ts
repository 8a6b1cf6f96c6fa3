/**
 * `discue doctor` through the real binary: a healthy sandbox passes every
 * check; an unreachable webhook, a missing program, a bad config file and an
 * open home directory are named with what to do; exit 1 only on a fail.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, startHookServer } from '../helpers/delivery.js';
import { ok, statusPid } from '../helpers/discue.js';
import { useSandbox } from '../helpers/sandbox.js';

interface Check {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  fix?: string;
}

describe('discue doctor', () => {
  const sb = useSandbox();
  afterEach(closeAllServers);

  /** A receiver that answers HEAD with 405 (doctor's probe must cope) and counts the probes. */
  async function receiver(): Promise<{ url: string; heads: () => number }> {
    const hook = await startHookServer((req) => ({ status: req.method === 'HEAD' ? 405 : 200 }));
    return { url: hook.url, heads: () => hook.requests.filter((r) => r.method === 'HEAD').length };
  }

  /** A port nothing listens on: bound, then closed. */
  async function deadUrl(): Promise<string> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    return `http://127.0.0.1:${port}/gone`;
  }

  const byName = (checks: Check[], name: string) => checks.find((c) => c.check === name);

  it('passes a healthy broker: every check ok, exit 0, one line per check', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    const hook = await receiver();
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--url', hook.url, '--name', 'dashboard']);
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', 'cat', '--name', 'printer']);
    const pid = await statusPid(sb);

    const result = await sb.run(['doctor', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const checks = JSON.parse(result.stdout) as Check[];
    expect(checks.map((c) => c.check)).toEqual(['home', 'socket dir', 'socket', 'daemon', 'disk', 'config', 'listener dashboard', 'listener printer']);
    // Disk space depends on the machine: never a fail here, but it may warn.
    for (const c of checks.filter((c) => c.check !== 'disk')) expect(c.status, `${c.check}: ${c.message}`).toBe('ok');
    expect(byName(checks, 'disk')!.status).not.toBe('fail');
    expect(byName(checks, 'home')!.message).toContain(`${sb.home} (mode 0700`);
    expect(byName(checks, 'socket')!.message).toBe(`${sb.socket} (mode 0600)`);
    expect(byName(checks, 'daemon')!.message).toContain(`running, pid ${pid}`);
    expect(byName(checks, 'listener dashboard')!.message).toBe(`${hook.url} answers HTTP 405 to HEAD`);
    expect(byName(checks, 'listener printer')!.message).toMatch(/^runs \/.*\/cat$/);
    expect(hook.heads()).toBe(1);

    const human = await sb.run(['doctor']);
    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines).toHaveLength(checks.length);
    expect(lines[0]).toMatch(/^ok\s+home\s+/);
  });

  it('names an unreachable webhook and a missing program as fails with the fix, and exits 1', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    const gone = await deadUrl();
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--url', gone, '--name', 'hook']);
    // add checks the program: it exists then, and is gone by the time doctor looks.
    writeFileSync(join(sb.dir, 'notify.sh'), '#!/bin/sh\ncat >/dev/null\n', { mode: 0o755 });
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', './notify.sh', '--name', 'mailer']);
    rmSync(join(sb.dir, 'notify.sh'));
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--url', gone, '--name', 'resting']);
    await ok(sb, ['listener', 'pause', 'resting']);

    const result = await sb.run(['doctor', '--json']);
    expect(result.code).toBe(1);
    const checks = JSON.parse(result.stdout) as Check[];
    expect(byName(checks, 'listener hook')).toEqual({
      check: 'listener hook',
      status: 'fail',
      message: `${gone} is unreachable: ECONNREFUSED`,
      fix: 'start the receiver, or `discue listener pause hook`',
    });
    expect(byName(checks, 'listener mailer')).toMatchObject({ status: 'fail', message: `./notify.sh is not an executable program in ${sb.dir}` });
    // Paused: nothing is delivered to it now, so only a warning.
    expect(byName(checks, 'listener resting')).toMatchObject({ status: 'warn', message: `${gone} is unreachable: ECONNREFUSED (paused)` });

    // Fixed: the program exists and is executable; the webhook is paused too.
    writeFileSync(join(sb.dir, 'notify.sh'), '#!/bin/sh\ncat >/dev/null\n');
    chmodSync(join(sb.dir, 'notify.sh'), 0o755);
    await ok(sb, ['listener', 'pause', 'hook']);
    const fixed = await sb.run(['doctor']);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(/^ok\s+listener mailer\s+runs .*notify\.sh$/m);
    expect(fixed.stdout).toMatch(/^warn\s+listener hook\s+.*ECONNREFUSED \(paused\) → start the receiver/m);
  });

  it('reports a stopped daemon, an open home and a broken config file without starting anything', async () => {
    mkdirSync(sb.home, { recursive: true, mode: 0o755 });
    chmodSync(sb.home, 0o755);
    const dir = join(sb.env.HOME, '.config', 'discue');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{"output": ');

    const result = await sb.run(['doctor', '--json']);
    expect(result.code).toBe(1);
    const checks = JSON.parse(result.stdout) as Check[];
    expect(byName(checks, 'home')).toMatchObject({ status: 'warn', fix: `chmod 700 ${sb.home}` });
    expect(byName(checks, 'daemon')).toMatchObject({ status: 'warn', message: 'not running; listeners are not checked' });
    expect(byName(checks, 'config')).toMatchObject({ status: 'fail', fix: `fix or remove ${join(dir, 'config.json')}` });
    expect(checks.some((c) => c.check.startsWith('listener'))).toBe(false);
    expect(sb.daemonPid()).toBeUndefined();
  });
});
