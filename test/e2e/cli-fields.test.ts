/**
 * `--fields` as a new user meets it, through the real binary: the --help of
 * each list names every field a listed item has, and a column title of the
 * table that is not a field (HEALTH, SIZE, PUBLISHED) is answered with the key
 * that holds it, not just "unknown field". `deliveries list` follows the same
 * -q rule as the other lists, and prints every value whole to a pipe.
 */
import { describe, expect, it } from 'vitest';
import { expectError, expectJsonError, ok } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

/** The field list a --help prints for --fields: "(a,b,c)" after the option, wrapped or not. */
function helpFields(help: string): string[] {
  const match = /--fields <list>[^(]*\(([^)]*)\)/.exec(help);
  expect(match, help).not.toBeNull();
  return match![1]!.replace(/\s+/g, '').split(',');
}

describe('--fields on lists', () => {
  const sb = useSandbox();

  it('the --help of listener list and queue list names every key their --json items have', async () => {
    await ok(sb, ['queue', 'create', 'orders', '--retention', '7d', '--max-messages', '10']);
    await ok(sb, ['publish', 'orders', '--data', 'a']);
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--url', 'http://user:pw@127.0.0.1:9/hook', '--name', 'hook']);
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', 'true', '--name', 'noop']);
    await ok(sb, ['listener', 'pause', 'noop']);

    const listenerKeys = (JSON.parse(await ok(sb, ['listener', 'list', '--json'])) as object[]).flatMap((l) => Object.keys(l));
    const listenerHelp = helpFields(await ok(sb, ['listener', 'list', '--help']));
    for (const key of new Set(listenerKeys)) expect(listenerHelp, `listener field ${key}`).toContain(key);
    for (const field of listenerHelp) await ok(sb, ['listener', 'list', '--fields', field]);

    const queueKeys = (JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as object[]).flatMap((q) => Object.keys(q));
    const queueHelp = helpFields(await ok(sb, ['queue', 'list', '--help']));
    for (const key of new Set(queueKeys)) expect(queueHelp, `queue field ${key}`).toContain(key);
  });

  it('a column title that is not a field says which key holds it (exit 2, INVALID_ARGUMENT)', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', 'true', '--name', 'noop']);

    const health = await sb.run(['listener', 'list', '--fields', 'name,health']);
    expectError(health, 2, 'INVALID_ARGUMENT');
    expect(health.stderr).toContain("not the table's column titles: HEALTH comes from progress");

    const size = expectJsonError(await sb.run(['queue', 'list', '--fields', 'name,SIZE', '--json']), 2, 'INVALID_ARGUMENT');
    expect(size.message).toContain('SIZE comes from bytes');

    const published = await sb.run(['messages', 'list', 'orders', '--fields', 'id,published']);
    expectError(published, 2, 'INVALID_ARGUMENT');
    expect(published.stderr).toContain('PUBLISHED comes from publishedAt');

    // A plain typo still gets the suggestion, not the column note.
    const typo = await sb.run(['listener', 'list', '--fields', 'nmae']);
    expectError(typo, 2, 'INVALID_ARGUMENT');
    expect(typo.stderr).toContain('unknown field "nmae"');
    expect(typo.stderr).not.toContain('column titles');
  });
  it('deliveries list -q prints the delivery ids alone; piped, the last result is whole', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    // Port 9 (discard) refuses on loopback: one attempt, then the delivery is dead.
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--url', 'http://127.0.0.1:9/a-long-path-for-a-long-error', '--name', 'hook', '--max-attempts', '1']);
    const listenerId = (JSON.parse(await ok(sb, ['listener', 'show', 'hook', '--json'])) as { id: string }).id;
    const messageId = (await ok(sb, ['publish', 'orders', '--data', 'x'])).trim();
    await waitFor(async () => (await ok(sb, ['deliveries', 'list', '--state', 'dead', '--json'])).includes(messageId), 30_000, 'the delivery to die');

    expect(await ok(sb, ['deliveries', 'list', '--state', 'dead', '-q'])).toBe(`${listenerId}/${messageId}\n`);
    // -q wins over --json, as on the other lists.
    expect(await ok(sb, ['deliveries', 'list', '-q', '--json'])).toBe(`${listenerId}/${messageId}\n`);

    const [delivery] = JSON.parse(await ok(sb, ['deliveries', 'list', '--json'])) as { attempts: { error?: string }[] }[];
    const error = delivery!.attempts.at(-1)!.error!;
    expect(error.length, error).toBeGreaterThan(40);
    expect(await ok(sb, ['deliveries', 'list'])).toContain(error);
  });
});
