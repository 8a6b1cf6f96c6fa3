/**
 * Each listener default lives in protocol/defaults.ts; the config keys, the
 * help text and the completion read it from there, and the delivery states
 * from protocol/wire.ts. A number typed again somewhere drifts: this catches it.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sandbox.js';
import { formatDuration, parseDuration } from '../../src/client/duration.js';
import { completionModel } from '../../src/cli/completion/model.js';
import { configKey } from '../../src/cli/config.js';
import { buildProgram } from '../../src/cli/program.js';
import {
  DEFAULT_CONCURRENCY,
  DEDUPE_MAX_KEYS,
  DEDUPE_WINDOW_MS,
  HISTORY_KEEP,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETRY_DELAY_MS,
  DEFAULT_TIMEOUT_MS,
  MAX_CONCURRENCY,
  MOST_ATTEMPTS,
} from '../../src/protocol/defaults.js';
import { DELIVERY_STATES } from '../../src/protocol/wire.js';

function command(program: Command, path: string[]): Command {
  return path.reduce((c, name) => c.commands.find((s) => s.name() === name)!, program);
}

describe('one source for listener defaults and delivery states', () => {
  const program = buildProgram();

  it('the config keys default to the daemon defaults', () => {
    expect(parseDuration(configKey('listener.timeout').default)).toBe(DEFAULT_TIMEOUT_MS);
    expect(Number(configKey('listener.maxAttempts').default)).toBe(DEFAULT_MAX_ATTEMPTS);
    expect(() => configKey('listener.maxAttempts').parse(String(MOST_ATTEMPTS))).not.toThrow();
    expect(() => configKey('listener.maxAttempts').parse(String(MOST_ATTEMPTS + 1))).toThrow(String(MOST_ATTEMPTS));
  });

  it('listener add --help says the defaults and limits the daemon applies', () => {
    const add = command(program, ['listener', 'add']);
    const option = (flag: string) => add.options.find((o) => o.long === flag)!;
    expect(option('--timeout').description).toContain(formatDuration(DEFAULT_TIMEOUT_MS));
    expect(option('--max-attempts').description).toContain(`1 to ${MOST_ATTEMPTS}`);
    expect(option('--max-attempts').description).toContain(`else ${DEFAULT_MAX_ATTEMPTS}`);
    expect(parseDuration(String(option('--retry-delay').defaultValue))).toBe(DEFAULT_RETRY_DELAY_MS);
    expect(Number(option('--concurrency').defaultValue)).toBe(DEFAULT_CONCURRENCY);
    expect(option('--concurrency').description).toContain(`1 to ${MAX_CONCURRENCY}`);
  });

  it('deliveries list --state takes, and completes to, exactly the delivery states', () => {
    const list = command(program, ['deliveries', 'list']);
    expect(list.options.find((o) => o.long === '--state')!.argChoices).toEqual([...DELIVERY_STATES]);
    const model = completionModel(program).root.commands.find((c) => c.name === 'deliveries')!.commands.find((c) => c.name === 'list')!;
    expect(model.options.find((o) => o.flags.includes('--state'))!.value).toEqual({ kind: 'words', words: [...DELIVERY_STATES] });
  });

  it('the README names the delivered history both backends keep', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain(`keeps the newest ${HISTORY_KEEP} per`);
  });

  it('the README and the man page say the idempotency defaults the daemon applies', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const man = readFileSync(join(ROOT, 'man', 'discue.1'), 'utf8');
    expect(readme).toMatch(new RegExp(`DISCUE_DEDUPE_WINDOW\` \\| [^|]*default \`${formatDuration(DEDUPE_WINDOW_MS)}\``));
    expect(readme).toMatch(new RegExp(`DISCUE_DEDUPE_MAX_KEYS\` \\| [^|]*default \`${DEDUPE_MAX_KEYS}\``));
    expect(man).toContain(`default \\fI${formatDuration(DEDUPE_WINDOW_MS)}\\fR`);
  });
});
