/**
 * Conventions from issue 9, through the real binary and daemon, without a
 * terminal: idempotent set-up (--if-missing), `daemon start --data-dir`
 * against a daemon on another directory, durations printed as typed,
 * destructive commands that never ask a script, and tables that print full
 * values when piped. (The terminal side is in cli-tty.test.ts.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectError, messageCount, ok } from '../helpers/discue.js';
import { useSandbox } from '../helpers/sandbox.js';

describe('CLI conventions', () => {
  const sb = useSandbox();

  describe('queue create --if-missing', () => {
    it('creates the queue, then succeeds with the existing one and prints it', async () => {
      expect(await ok(sb, ['queue', 'create', 'orders', '--if-missing'])).toContain('created queue orders');
      await ok(sb, ['publish', 'orders', '--data', 'kept']);
      const again = await sb.run(['queue', 'create', 'orders', '--if-missing']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('queue orders already exists (1 message)');
      expect(again.stderr).toBe('');
      const json = JSON.parse(await ok(sb, ['queue', 'create', 'orders', '--if-missing', '--json'])) as { name: string; messages: number };
      expect(json).toMatchObject({ name: 'orders', messages: 1 });
      // Without the flag it is still a conflict.
      expectError(await sb.run(['queue', 'create', 'orders']), 5, 'QUEUE_EXISTS');
    });

    it('warns on stderr when the existing queue has other settings, leaves it unchanged, exits 0', async () => {
      await ok(sb, ['queue', 'create', 'audit', '--retention', '7d']);
      const result = await sb.run(['queue', 'create', 'audit', '--if-missing', '--retention', '1d', '--max-messages', '10']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain('warning: queue audit exists with other settings (left unchanged)');
      expect(result.stderr).toContain('retention is 7d, given 1d');
      expect(result.stderr).toContain('max messages is unlimited, given 10');
      const info = JSON.parse(await ok(sb, ['queue', 'show', 'audit', '--json'])) as { retentionMs: number; maxMessages?: number };
      expect(info.retentionMs).toBe(7 * 86_400_000);
      expect(info.maxMessages).toBeUndefined();
    });
  });

  describe('listener add --if-missing', () => {
    it('needs --name', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const result = await sb.run(['listener', 'add', '--queue', 'orders', '--exec', 'true', '--if-missing']);
      expectError(result, 2, 'USAGE');
      expect(result.stderr).toContain('--if-missing needs --name');
      expect(JSON.parse(await ok(sb, ['listener', 'list', '--json']))).toEqual([]);
    });

    it('adds once; the same settings again exit 0 with the same listener; other settings exit 5 naming each difference', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      await ok(sb, ['queue', 'create', 'payments']);
      const add = ['listener', 'add', '--queue', 'orders', '--url', 'http://127.0.0.1:9/hook', '--name', 'dashboard', '--timeout', '10s', '--if-missing'];
      const first = JSON.parse(await ok(sb, [...add, '--json'])) as { id: string; secret: string };
      const second = await sb.run(add);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toContain(`listener dashboard (${first.id}) already exists on orders`);
      // The secret is not printed again: it was shown once, at creation.
      expect(second.stdout).not.toContain('whsec_');
      const again = JSON.parse(await ok(sb, [...add, '--json'])) as { id: string };
      expect(again.id).toBe(first.id);
      // The same secret given explicitly is the same listener.
      await ok(sb, [...add, '--secret', first.secret]);

      const other = await sb.run([
        'listener', 'add', '--queue', 'orders', '--queue', 'payments', '--url', 'http://127.0.0.1:9/other', '--name', 'dashboard', '--if-missing',
      ]);
      expectError(other, 5, 'LISTENER_EXISTS');
      expect(other.stderr).toContain('listener dashboard exists with other settings');
      expect(other.stderr).toContain('queues is orders, given orders,payments');
      expect(other.stderr).toContain('url is http://127.0.0.1:9/hook, given http://127.0.0.1:9/other');
      expect(other.stderr).toContain('timeout is 10s, given 30s');
      const json = await sb.run([...add.slice(0, -1), '--max-attempts', '3', '--if-missing', '--json']);
      expect(json.code).toBe(5);
      const error = JSON.parse(json.stderr) as { error: { code: string; details: { differences: string[] } } };
      expect(error.error.code).toBe('LISTENER_EXISTS');
      expect(error.error.details.differences).toEqual(['max attempts is 10, given 3']);
      // Nothing was changed or added.
      const list = JSON.parse(await ok(sb, ['listener', 'list', '--json'])) as { id: string; queues: string[]; url: string }[];
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({ id: first.id, queues: ['orders'], url: 'http://127.0.0.1:9/hook' });
    });

    it('compares commands as argv and the working directory they run in', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const elsewhere = join(sb.dir, 'elsewhere');
      mkdirSync(elsewhere);
      // add checks that the program exists where it will run: give both directories one.
      for (const dir of [sb.dir, elsewhere]) writeFileSync(join(dir, 'notify.sh'), '#!/bin/sh\ncat >/dev/null\n', { mode: 0o755 });
      const add = ['listener', 'add', '--queue', 'orders', '--exec', "./notify.sh 'two words'", '--name', 'mailer', '--if-missing'];
      await ok(sb, add);
      expect((await sb.run(['listener', 'add', '--queue', 'orders', '--exec', './notify.sh "two words"', '--name', 'mailer', '--if-missing'])).code).toBe(0);
      const moved = await sb.run(add, { cwd: elsewhere });
      expectError(moved, 5, 'LISTENER_EXISTS');
      expect(moved.stderr).toContain(`working directory is ${sb.dir}, given ${elsewhere}`);
    });
  });

  it('daemon start --data-dir while a daemon runs on another directory: exit 5 naming both', async () => {
    const first = join(sb.dir, 'first');
    const second = join(sb.dir, 'second');
    const started = await sb.run(['daemon', 'start', '--data-dir', first]);
    expect(started.code, started.stderr).toBe(0);
    // The same directory again is the idempotent "already running".
    const same = await sb.run(['daemon', 'start', '--data-dir', first]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain('daemon already running');
    expect((await sb.run(['daemon', 'start'])).code).toBe(0); // no --data-dir: no claim about it

    const other = await sb.run(['daemon', 'start', '--data-dir', second]);
    expectError(other, 5, 'DATA_DIR_CONFLICT');
    expect(other.stderr).toContain(first);
    expect(other.stderr).toContain(second);
    const json = await sb.run(['daemon', 'start', '--data-dir', second, '--json']);
    expect(json.code).toBe(5);
    expect((JSON.parse(json.stderr) as { error: { code: string } }).error.code).toBe('DATA_DIR_CONFLICT');
    const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { dataDir: string };
    expect(status.dataDir).toBe(first);
  });

  it('listener show prints durations as they are typed; --json keeps milliseconds', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', 'true', '--name', 'mailer', '--timeout', '1m30s', '--retry-delay', '500ms']);
    const shown = await ok(sb, ['listener', 'show', 'mailer']);
    expect(shown).toMatch(/^timeout:\s+1m30s$/m);
    expect(shown).toMatch(/^retry delay:\s+500ms, doubling$/m);
    expect(shown).not.toContain(' ms');
    const json = JSON.parse(await ok(sb, ['listener', 'show', 'mailer', '--json'])) as { timeoutMs: number; retryDelayMs: number };
    expect(json).toMatchObject({ timeoutMs: 90_000, retryDelayMs: 500 });
    await ok(sb, ['queue', 'create', 'audit', '--retention', '36h']);
    expect(await ok(sb, ['queue', 'show', 'audit'])).toMatch(/^retention:\s+1d12h$/m);
  });

  it('purge and delete --force do not ask when stdin is not a terminal', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['publish', 'orders'], '{"data":"a"}\n{"data":"b"}\n');
    const purged = await sb.run(['queue', 'purge', 'orders'], { input: 'n\n' });
    expect(purged.code, purged.stderr).toBe(0);
    expect(purged.stdout).toContain('purged 2 messages from orders');
    expect(purged.stderr).not.toContain('[y/N]');
    expect(await messageCount(sb, 'orders')).toBe(0);
    await ok(sb, ['publish', 'orders', '--data', 'c']);
    const deleted = await sb.run(['queue', 'delete', 'orders', '--force'], { input: 'n\n' });
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stderr).not.toContain('[y/N]');
    expect(JSON.parse(await ok(sb, ['queue', 'list', '--json']))).toEqual([]);
  });

  it('a table piped to a script keeps every value whole, one row per line', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    // A multi-line shell script as the command: its newlines must not split the row.
    const script = `echo first line\necho ${'x'.repeat(150)}\nexit 3`;
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--shell', '--exec', script, '--name', 'failing']);
    const listed = await ok(sb, ['listener', 'list']);
    const lines = listed.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`sh -c echo first line echo ${'x'.repeat(150)} exit 3`);
    expect(listed).not.toContain('…');
  });
});
