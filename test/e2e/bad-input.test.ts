/**
 * Bad input through the real binary: each case gets its documented exit
 * code and stable error code, and nothing is stored or harmed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectError, expectJsonError, listAll, messageCount, ndjson, ok } from '../helpers/discue.js';
import { useSandbox } from '../helpers/sandbox.js';

const KIB = 1024;

describe('bad input through the real binary', () => {
  const sb = useSandbox();

  it('refuses malformed and mistyped messages with exit 2 and stores nothing', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const goodId = (await ok(sb, ['publish', 'q', '{"data":"good"}'])).trim();

    const cases: [string, string][] = [
      ['{"data":"unterminated', 'INVALID_JSON'],
      ['not json at all', 'INVALID_JSON'],
      ['{"name":"no data"}', 'INVALID_MESSAGE'],
      ['{"data":42}', 'INVALID_MESSAGE'],
      ['{"data":{"id":1}}', 'INVALID_MESSAGE'],
      ['{"data":null}', 'INVALID_MESSAGE'],
      ['{"data":["a"]}', 'INVALID_MESSAGE'],
      ['{"data":"x","extra":1}', 'INVALID_MESSAGE'],
      ['{"data":"x","name":5}', 'INVALID_MESSAGE'],
      ['{"data":"x","name":""}', 'INVALID_MESSAGE'],
      ['"just a string"', 'INVALID_MESSAGE'],
      ['[{"data":"x"}]', 'INVALID_MESSAGE'],
    ];
    // The cases are independent (each is refused, nothing is stored), so they run side by side
    // (12 CLI processes at a time): 36 runs one after another were most of this file's time.
    await Promise.all(
      cases.map(async ([message, code]) => {
        expectError(await sb.run(['publish', 'q', message]), 2, code);
        expectJsonError(await sb.run(['publish', 'q', message, '--json']), 2, code);
        // The same line on stdin (the batch path) is refused the same way, naming the line.
        const batch = await sb.run(['publish', 'q'], { input: message + '\n' });
        expectError(batch, 2, code);
        expect(batch.stderr).toContain('line 1');
      }),
    );
    // The error names what is wrong.
    expect((await sb.run(['publish', 'q', '{"data":42}'])).stderr).toMatch(/"data" must be a string, got a number/);
    expect((await sb.run(['publish', 'q', '{"data":"x","extra":1}'])).stderr).toContain('unknown field "extra"');

    const stored = await listAll(sb, 'q');
    expect(stored.map((m) => [m.id, m.data])).toEqual([[goodId, 'good']]);
    expect(await messageCount(sb, 'q')).toBe(1);
  });

  it('refuses contradictory or missing publish arguments as usage errors', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    expectError(await sb.run(['publish', 'q', '{"data":"a"}', '--data', 'b']), 2, 'USAGE');
    expectError(await sb.run(['publish', 'q', '--name', 'n']), 2, 'USAGE');
    expectError(await sb.run(['publish', 'q'], { input: '' }), 2, 'USAGE');
    expectError(await sb.run(['publish', 'q'], { input: '\n\n' }), 2, 'USAGE');
    expect(await messageCount(sb, 'q')).toBe(0);
  });

  it('accepts data of exactly 256 KiB and refuses one byte more (bytes, not characters)', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    // Through stdin: an argument of 256 KiB is over Linux's per-argument limit.
    const exact = 'x'.repeat(256 * KIB);
    const exactUtf8 = 'é'.repeat(128 * KIB); // 2 bytes each
    const ids = (await ok(sb, ['publish', 'q'], ndjson([exact, exactUtf8]))).trim().split('\n');
    expect(ids).toHaveLength(2);

    const over = await sb.run(['publish', 'q'], { input: ndjson(['x'.repeat(256 * KIB + 1)]) });
    expectError(over, 1, 'MESSAGE_TOO_LARGE');
    expect(over.stderr).toContain('262145 bytes');
    const overUtf8 = await sb.run(['publish', 'q', '--json'], { input: ndjson(['é'.repeat(128 * KIB) + 'x']) });
    expectJsonError(overUtf8, 1, 'MESSAGE_TOO_LARGE');

    const stored = await listAll(sb, 'q');
    expect(stored.map((m) => m.id)).toEqual(ids);
    expect(stored[0]!.data).toBe(exact);
    expect(stored[1]!.data).toBe(exactUtf8);
  });

  it('checks messages against the queue schema and refuses bad schema files', async () => {
    const schema = join(sb.dir, 'order.schema.json');
    writeFileSync(
      schema,
      JSON.stringify({ type: 'object', required: ['id', 'status'], properties: { id: { type: 'integer' }, status: { type: 'string' } } }),
    );
    const invalid = join(sb.dir, 'invalid.schema.json');
    writeFileSync(invalid, JSON.stringify({ type: 12 }));
    const notJson = join(sb.dir, 'not-json.schema.json');
    writeFileSync(notJson, '{ type: object');
    const array = join(sb.dir, 'array.schema.json');
    writeFileSync(array, '[]');

    expectError(await sb.run(['queue', 'create', 'orders', '--schema', invalid]), 2, 'INVALID_SCHEMA');
    expectError(await sb.run(['queue', 'create', 'orders', '--schema', notJson]), 2, 'INVALID_SCHEMA');
    expectError(await sb.run(['queue', 'create', 'orders', '--schema', array]), 2, 'INVALID_SCHEMA');
    expectError(await sb.run(['queue', 'create', 'orders', '--schema', join(sb.dir, 'missing.json')]), 2, 'INVALID_SCHEMA');
    // An endless file is read only as far as a request can carry (it was read to 512 MB first).
    const endless = await sb.run(['queue', 'create', 'orders', '--schema', '/dev/zero']);
    expectError(endless, 2, 'INVALID_SCHEMA');
    expect(endless.stderr).toContain('is over 16 MiB');
    // None of those created the queue.
    expectError(await sb.run(['queue', 'show', 'orders']), 4, 'QUEUE_NOT_FOUND');

    await ok(sb, ['queue', 'create', 'orders', '--schema', schema]);
    const good = (await ok(sb, ['publish', 'orders', JSON.stringify({ data: '{"id":1,"status":"received"}' })])).trim();

    const violation = await sb.run(['publish', 'orders', JSON.stringify({ data: '{"id":"one","status":"received"}' })]);
    expectError(violation, 1, 'SCHEMA_VIOLATION');
    expect(violation.stderr).toContain('/id');
    const missing = await sb.run(['publish', 'orders', '--json', '--data', '{"id":2}']);
    const error = expectJsonError(missing, 1, 'SCHEMA_VIOLATION');
    expect(JSON.stringify(error.details)).toContain('status');
    expectError(await sb.run(['publish', 'orders', '--data', 'plain text']), 1, 'DATA_NOT_JSON');
    // A schema update with an invalid schema is refused and the old one stays.
    expectError(await sb.run(['queue', 'update', 'orders', '--schema', invalid]), 2, 'INVALID_SCHEMA');
    expectError(await sb.run(['publish', 'orders', '--data', '{"id":3}']), 1, 'SCHEMA_VIOLATION');

    const stored = await listAll(sb, 'orders');
    expect(stored.map((m) => m.id)).toEqual([good]);
  });

  it('refuses invalid queue names (exit 2) and duplicates (exit 5)', async () => {
    const bad = ['', ' ', 'a'.repeat(65), 'has space', 'a/b', '../x', 'ünïcode', 'q\n', 'emoji😀'];
    for (const name of bad) {
      expectError(await sb.run(['queue', 'create', name]), 2, 'INVALID_QUEUE_NAME');
      expectJsonError(await sb.run(['queue', 'create', name, '--json']), 2, 'INVALID_QUEUE_NAME');
      expectError(await sb.run(['publish', name, '{"data":"x"}']), 2, 'INVALID_QUEUE_NAME');
    }
    const longest = 'a'.repeat(64);
    await ok(sb, ['queue', 'create', longest]);
    await ok(sb, ['queue', 'create', 'A.b_c-1']);
    await ok(sb, ['publish', longest, '{"data":"kept"}']);

    expectError(await sb.run(['queue', 'create', longest]), 5, 'QUEUE_EXISTS');
    expectJsonError(await sb.run(['queue', 'create', 'A.b_c-1', '--json']), 5, 'QUEUE_EXISTS');

    const queues = JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as { name: string; messages: number }[];
    expect(queues.map((q) => [q.name, q.messages]).sort()).toEqual([
      ['A.b_c-1', 0],
      [longest, 1],
    ]);
  });

  it('reports unknown queues and messages with exit 4 and creates nothing', async () => {
    const id = '01JF8Z3K4M5N6P7Q8R9S0T1V2W';
    expectError(await sb.run(['publish', 'nope', '{"data":"x"}']), 4, 'QUEUE_NOT_FOUND');
    expectError(await sb.run(['publish', 'nope'], { input: ndjson(['a', 'b']) }), 4, 'QUEUE_NOT_FOUND');
    expectJsonError(await sb.run(['publish', 'nope', '--data', 'x', '--json']), 4, 'QUEUE_NOT_FOUND');
    expectError(await sb.run(['queue', 'show', 'nope']), 4, 'QUEUE_NOT_FOUND');
    expectError(await sb.run(['queue', 'delete', 'nope']), 4, 'QUEUE_NOT_FOUND');
    expectError(await sb.run(['queue', 'purge', 'nope']), 4, 'QUEUE_NOT_FOUND');
    expectError(await sb.run(['queue', 'update', 'nope', '--max-messages', '3']), 4, 'QUEUE_NOT_FOUND');
    expectError(await sb.run(['messages', 'list', 'nope']), 4, 'QUEUE_NOT_FOUND');
    expectJsonError(await sb.run(['messages', 'list', 'nope', '--json']), 4, 'QUEUE_NOT_FOUND');
    expectError(await sb.run(['messages', 'get', 'nope', id]), 4, 'QUEUE_NOT_FOUND');

    await ok(sb, ['queue', 'create', 'q']);
    expectError(await sb.run(['messages', 'get', 'q', id]), 4, 'MESSAGE_NOT_FOUND');
    expectError(await sb.run(['messages', 'delete', 'q', id]), 4, 'MESSAGE_NOT_FOUND');
    expectError(await sb.run(['messages', 'get', 'q', 'not-an-id']), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['messages', 'list', 'q', '--since', 'yesterday-ish']), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['messages', 'list', 'q', '--limit', '0']), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['queue', 'create', 'r', '--retention', 'forever']), 2, 'INVALID_DURATION');
    expectError(await sb.run(['queue', 'create', 'r', '--max-messages', '-1']), 2, 'INVALID_ARGUMENT');

    const queues = JSON.parse(await ok(sb, ['queue', 'list', '--json'])) as { name: string }[];
    expect(queues.map((q) => q.name)).toEqual(['q']);
  });

  it('refuses to delete a queue holding messages without --force (exit 5), and deletes with it', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    await ok(sb, ['publish', 'q'], ndjson(['a', 'b', 'c']));
    const refused = await sb.run(['queue', 'delete', 'q']);
    expectError(refused, 5, 'QUEUE_NOT_EMPTY');
    expect(refused.stderr).toContain('--force');
    expectJsonError(await sb.run(['queue', 'delete', 'q', '--json']), 5, 'QUEUE_NOT_EMPTY');
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['a', 'b', 'c']);

    const forced = JSON.parse(await ok(sb, ['queue', 'delete', 'q', '--force', '--json'])) as { deleted: number };
    expect(forced.deleted).toBe(3);
    expectError(await sb.run(['queue', 'show', 'q']), 4, 'QUEUE_NOT_FOUND');

    // An empty queue needs no --force.
    await ok(sb, ['queue', 'create', 'empty']);
    await ok(sb, ['queue', 'delete', 'empty']);
    expectError(await sb.run(['queue', 'show', 'empty']), 4, 'QUEUE_NOT_FOUND');
  });

  it('stops an NDJSON batch at a bad line, names the line, and stores exactly what it reports', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    // A line that is not JSON, in the middle: nothing of the batch is stored.
    const input = ndjson(['one', 'two']) + '{"data": oops}\n' + ndjson(['four']);
    const bad = await sb.run(['publish', 'q'], { input });
    expectError(bad, 2, 'INVALID_JSON');
    expect(bad.stderr).toContain('line 3');
    expect(bad.stderr).toContain('nothing was stored');
    expect(await messageCount(sb, 'q')).toBe(0);

    // A line the daemon refuses (schema), in the middle: the batch is all or nothing.
    const schema = join(sb.dir, 's.json');
    writeFileSync(schema, JSON.stringify({ type: 'object', required: ['n'] }));
    await ok(sb, ['queue', 'create', 's', '--schema', schema]);
    const refused = await sb.run(['publish', 's', '--json'], { input: ndjson(['{"n":1}', '{"n":2}', '{}', '{"n":4}']) });
    const error = expectJsonError(refused, 1, 'SCHEMA_VIOLATION');
    expect(error.message).toContain('line 3');
    expect(error.details).toMatchObject({ line: 3, stored: 0 });
    expect(await messageCount(sb, 's')).toBe(0);

    // Past the first batch (1000 lines go to the daemon at once): what was
    // stored before the bad line is reported, printed, and is exactly what is there.
    const many = Array.from({ length: 1200 }, (_, i) => JSON.stringify({ data: `m${i + 1}` }));
    many[1099] = '{"data":1100}';
    const partial = await sb.run(['publish', 'q'], { input: many.join('\n') + '\n' });
    expect(partial.code, partial.stderr).toBe(2);
    expect(partial.stderr).toContain('line 1100');
    expect(partial.stderr).toContain('[INVALID_MESSAGE]');
    const printed = partial.stdout.trim().split('\n');
    const reported = Number(/the (\d+) messages? before it (?:was|were) stored/.exec(partial.stderr)?.[1]);
    expect(printed).toHaveLength(reported);
    const stored = await listAll(sb, 'q');
    expect(stored.map((m) => m.id)).toEqual(printed);
    expect(stored.map((m) => m.data)).toEqual(Array.from({ length: reported }, (_, i) => `m${i + 1}`));

    // Under --json the ids stored before the failure are on stdout as well.
    await ok(sb, ['queue', 'purge', 'q']);
    const partialJson = await sb.run(['publish', 'q', '--json'], { input: many.join('\n') + '\n' });
    const jsonError = expectJsonError(partialJson, 2, 'INVALID_MESSAGE');
    const result = JSON.parse(partialJson.stdout) as { count: number; ids: string[] };
    expect(jsonError.details).toMatchObject({ line: 1100, stored: result.count });
    expect((await listAll(sb, 'q')).map((m) => m.id)).toEqual(result.ids);
  });
});
