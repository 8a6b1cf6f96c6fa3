/**
 * Errors that teach, through the real binary: what arrived and how to say it
 * (a JSON argument the shell mangled, plain text without --data), the closest
 * queue name, usage codes on the first line, and --json honoured by every
 * kind of output (timeouts, daemon logs, versions, config warnings).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, DiscueError } from '../../src/index.js';
import { expectError, expectJsonError, ok, statusPid } from '../helpers/discue.js';
import { ROOT, useSandbox } from '../helpers/sandbox.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('errors that teach', () => {
  const sb = useSandbox();

  it('a JSON argument the shell mangled shows what arrived and suggests single quotes or --data; plain text suggests --data', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    // What `discue publish orders "{"data":"x"}"` passes after the shell took the quotes.
    const mangled = await sb.run(['publish', 'orders', '{data:x}']);
    expectError(mangled, 2, 'INVALID_JSON');
    expect(mangled.stderr).toContain('it arrived as {data:x}');
    expect(mangled.stderr).toContain(`single quotes (discue publish orders '{"data":"..."}')`);
    expect(mangled.stderr).toContain('--data');

    const text = await sb.run(['publish', 'orders', 'Order shipped']);
    expectError(text, 2, 'INVALID_JSON');
    expect(text.stderr).toContain(`use --data: discue publish orders --data 'Order shipped'`);

    const json = expectJsonError(await sb.run(['publish', 'orders', '{data:x}', '--json']), 2, 'INVALID_JSON');
    expect(json.message).toContain('it arrived as {data:x}');
    // The advice works: stored, nothing before.
    expect(await ok(sb, ['publish', 'orders', '--data', 'Order shipped'])).toMatch(/^[0-9A-Z]{26}\n$/);
    expect(JSON.parse(await ok(sb, ['messages', 'list', 'orders', '--json']))).toHaveLength(1);
  });

  it('an unknown queue suggests the closest name, in the CLI and the library alike', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['queue', 'create', 'payments']);
    const typo = await sb.run(['publish', 'ordres', '--data', 'x']);
    expectError(typo, 4, 'QUEUE_NOT_FOUND');
    expect(typo.stderr).toContain('queue "ordres" does not exist; did you mean "orders"?');
    const json = expectJsonError(await sb.run(['messages', 'list', 'payment', '--json']), 4, 'QUEUE_NOT_FOUND');
    expect(json.message).toContain('did you mean "payments"?');
    expect(json.message).not.toContain('orders');
    const listen = await sb.run(['listen', 'Orders', '--timeout', '5s']);
    expectError(listen, 4, 'QUEUE_NOT_FOUND');
    expect(listen.stderr).toContain('did you mean "orders"?');
    // Nothing close: no guess.
    const far = await sb.run(['queue', 'show', 'zebra']);
    expectError(far, 4, 'QUEUE_NOT_FOUND');
    expect(far.stderr).not.toContain('did you mean');

    const client = await connect({ home: sb.home });
    try {
      const err = await client.publish('order', { data: 'x' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiscueError);
      expect((err as DiscueError).code).toBe('QUEUE_NOT_FOUND');
      expect((err as DiscueError).message).toContain('did you mean "orders"?');
    } finally {
      await client.close();
    }
  });

  it('a mistyped command has its code on the first line, and the suggestion after it', async () => {
    const result = await sb.run(['pubish', 'orders']);
    expect(result.code).toBe(2);
    const lines = result.stderr.split('\n');
    expect(lines[0]).toBe("error: unknown command 'pubish' [USAGE]");
    expect(lines[1]).toContain('Did you mean publish?');
    const json = expectJsonError(await sb.run(['pubish', '--json']), 2, 'USAGE');
    expect(json.message).toBe("unknown command 'pubish' (Did you mean publish?)");
  });

  it('listen --timeout says the unit, and with --json the timeout is a JSON error', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    const human = await sb.run(['listen', 'orders', '--timeout', '1']);
    expectError(human, 124, 'TIMEOUT');
    expect(human.stderr).toContain('listen got no message within 1s');

    const json = await sb.run(['listen', 'orders', '--timeout', '500ms', '--count', '2', '--json']);
    const error = expectJsonError(json, 124, 'TIMEOUT');
    expect(error.message).toBe('listen got 0 of 2 messages within 500ms');
    expect(json.stdout).toBe('');
    // stderr holds that one JSON document and nothing else.
    expect(json.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('daemon logs --json prints NDJSON: time, level, message and fields per line', async () => {
    await ok(sb, ['daemon', 'start']);
    const pid = await statusPid(sb);
    const out = await ok(sb, ['daemon', 'logs', '--json']);
    const entries = out.trim().split('\n').map((l) => JSON.parse(l) as { time?: string; level?: string; message: string; fields?: Record<string, string> });
    expect(entries.length).toBeGreaterThan(0);
    const started = entries.find((e) => e.message === 'daemon started');
    expect(started?.level).toBe('info');
    expect(Date.parse(started!.time!)).not.toBeNaN();
    expect(started?.fields?.pid).toBe(String(pid));
    expect(started?.fields?.socket).toBe(sb.socket);
  });

  it('discue version and --version --json show the CLI and the daemon, and never start one', async () => {
    const stopped = JSON.parse(await ok(sb, ['--version', '--json'])) as unknown;
    expect(stopped).toEqual({ cli: { version: VERSION, protocol: 1 }, daemon: { running: false } });
    expect(await ok(sb, ['version'])).toBe(`cli:    ${VERSION} (protocol 1)\ndaemon: not running\n`);
    expect(sb.daemonPid()).toBeUndefined();

    await ok(sb, ['daemon', 'start']);
    const pid = await statusPid(sb);
    const running = JSON.parse(await ok(sb, ['version', '--json'])) as unknown;
    expect(running).toEqual({ cli: { version: VERSION, protocol: 1 }, daemon: { running: true, version: VERSION, protocol: 1, pid } });
    expect(JSON.parse(await ok(sb, ['-V', '--json']))).toEqual(running);
    expect(await ok(sb, ['version'])).toContain(`daemon: ${VERSION} (protocol 1), pid ${pid}`);
    // Plain --version stays the bare version.
    expect(await ok(sb, ['--version'])).toBe(`${VERSION}\n`);
  });

  it('under --json, a broken config file is a JSON warning on stderr, not text', async () => {
    const dir = join(sb.env.HOME, '.config', 'discue');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{not json');
    const result = await sb.run(['queue', 'list', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
    const lines = result.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect((JSON.parse(line) as { warning: { message: string } }).warning.message).toContain('config');
    // Without --json the same warning is text, and notes come back.
    const human = await sb.run(['queue', 'list']);
    expect(human.stderr).toMatch(/^warning: /);
    expect(human.stderr).toContain('no queues yet');
  });
});
