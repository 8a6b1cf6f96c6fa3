/**
 * "Every command honours --json, errors included", checked the way a new user
 * found the gaps: a wrong call of each command with --json, through the real
 * binary, leaves stderr holding only JSON lines ({"error":...}) and stdout
 * empty or JSON. A command group run without its subcommand (`discue queue`)
 * did nothing: a usage error (exit 2), its help on stderr, or with --json a
 * USAGE error naming the subcommands. A warning is JSON too.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { expectJsonError, ok } from '../helpers/discue.js';
import { useSandbox } from '../helpers/sandbox.js';

function jsonLines(text: string, where: string): unknown[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new Error(`not JSON: ${line}\n${where}`);
      }
    });
}

/** Wrong calls of every command; each must fail with a JSON error and nothing else. */
const WRONG: { args: string[]; exit: number; code: string }[] = [
  { args: ['daemon', 'logs', '-n', 'x'], exit: 2, code: 'USAGE' },
  { args: ['daemon', 'logs', '-n', '2x'], exit: 2, code: 'USAGE' },
  { args: ['queue', 'create', 'Bad/name'], exit: 2, code: 'INVALID_QUEUE_NAME' },
  { args: ['queue', 'create'], exit: 2, code: 'USAGE' },
  { args: ['queue', 'show', 'nope'], exit: 4, code: 'QUEUE_NOT_FOUND' },
  { args: ['queue', 'update', 'orders', '--retention', 'soon'], exit: 2, code: 'INVALID_DURATION' },
  { args: ['queue', 'delete', 'orders'], exit: 5, code: 'QUEUE_NOT_EMPTY' },
  { args: ['queue', 'purge', 'nope', '--yes'], exit: 4, code: 'QUEUE_NOT_FOUND' },
  { args: ['publish', 'orders', '{x'], exit: 2, code: 'INVALID_JSON' },
  { args: ['publish', 'ordres', '--data', 'x'], exit: 4, code: 'QUEUE_NOT_FOUND' },
  { args: ['messages', 'list', 'orders', '--limit', '0'], exit: 2, code: 'INVALID_ARGUMENT' },
  { args: ['messages', 'get', 'orders', '01M8DK0YMQA304GWEX5PX128G5'], exit: 4, code: 'MESSAGE_NOT_FOUND' },
  { args: ['listener', 'add', '--queue', 'orders'], exit: 2, code: 'USAGE' },
  { args: ['listener', 'add', '--queue', 'orders', '--exec', './missing.sh'], exit: 2, code: 'COMMAND_NOT_FOUND' },
  { args: ['listener', 'show', 'nope'], exit: 4, code: 'LISTENER_NOT_FOUND' },
  { args: ['listener', 'pause', 'nope'], exit: 4, code: 'LISTENER_NOT_FOUND' },
  { args: ['listen', 'orders', '--timeout', '1'], exit: 124, code: 'TIMEOUT' },
  { args: ['deliveries', 'list', '--state', 'bad'], exit: 2, code: 'USAGE' },
  { args: ['deliveries', 'retry'], exit: 2, code: 'USAGE' },
  { args: ['top', '--interval', 'abc'], exit: 2, code: 'INVALID_DURATION' },
  { args: ['config', 'get', 'nope'], exit: 2, code: 'INVALID_ARGUMENT' },
  { args: ['config', 'set', 'color', 'purple'], exit: 2, code: 'INVALID_ARGUMENT' },
  { args: ['completion', 'tcsh'], exit: 2, code: 'USAGE' },
  { args: ['pubish', 'orders'], exit: 2, code: 'USAGE' },
  { args: ['--bogus'], exit: 2, code: 'USAGE' },
];

describe('--json on every command, errors included', () => {
  const sb = useSandbox();
  beforeEach(async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['publish', 'orders', '--data', 'kept']);
  });

  it('a wrong call of each command answers one JSON error on stderr, nothing else', { timeout: 120_000 }, async () => {
    for (const { args, exit, code } of WRONG) {
      const result = await sb.run([...args, '--json']);
      const where = `discue ${args.join(' ')} --json\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
      expect(jsonLines(result.stderr, where).length, where).toBeGreaterThan(0);
      jsonLines(result.stdout, where);
      expect(result.stdout, where).toBe('');
      expectJsonError(result, exit, code);
    }
  });

  it('a warning under --json is {"warning":{"message"}} on stderr, beside the result on stdout', async () => {
    const result = await sb.run(['queue', 'create', 'orders', '--if-missing', '--retention', '1d', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as { name: string }).name).toBe('orders');
    const lines = jsonLines(result.stderr, result.stderr) as { warning?: { message: string } }[];
    expect(lines).toHaveLength(1);
    expect(lines[0]!.warning!.message).toMatch(/^queue orders exists with other settings \(left unchanged\): retention is forever, given 1d/);
    // Without --json, the same words as a plain line; --quiet keeps it (the settings are not what was asked).
    const quiet = await sb.run(['queue', 'create', 'orders', '--if-missing', '--retention', '1d', '-q']);
    expect([quiet.code, quiet.stdout]).toEqual([0, '']);
    expect(quiet.stderr).toMatch(/^warning: queue orders exists with other settings/);
  });

  it('a group without its subcommand is a usage error: help on stderr, or a JSON USAGE error naming the subcommands', async () => {
    for (const group of ['queue', 'daemon', 'listener', 'messages', 'deliveries', 'config']) {
      const plain = await sb.run([group]);
      expect(plain.code, group).toBe(2);
      expect(plain.stderr, group).toMatch(new RegExp(`^Usage: discue ${group}(\\|\\w+)? \\[options\\] \\[command\\]`));
      expect(plain.stdout, group).toBe('');

      const json = await sb.run([group, '--json']);
      const error = expectJsonError(json, 2, 'USAGE');
      expect(error.message).toMatch(new RegExp(`^discue ${group} needs a command: \\w`));
      expect(jsonLines(json.stderr, json.stderr)).toHaveLength(1);
      expect(json.stdout).toBe('');
    }
    const queue = expectJsonError(await sb.run(['--json', 'queue']), 2, 'USAGE');
    expect(queue.message).toContain('create, list, show, update, delete, purge');
    const unknown = expectJsonError(await sb.run(['help', 'nosuch', '--json']), 2, 'USAGE');
    expect(unknown.message).toMatch(/^unknown command 'nosuch'; discue has: daemon, queue, /);
    // Help asked for is not an error, and goes to stdout.
    const help = await sb.run(['help', 'queue']);
    expect([help.code, help.stderr]).toEqual([0, '']);
    expect(help.stdout).toContain('Usage: discue queue');
  });
});
