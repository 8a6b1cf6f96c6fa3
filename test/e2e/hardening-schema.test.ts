/**
 * A schema cannot block the broker: a `pattern` that backtracks
 * catastrophically is cut off with SCHEMA_TIMEOUT while every other client is
 * served. On a daemon that checked on its own thread, this test would hang
 * (for hours with 40 characters) until its timeout.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectError, listAll, ok, statusPid } from '../helpers/discue.js';
import { collect, useSandbox } from '../helpers/sandbox.js';

describe('schema checks never block the daemon', () => {
  const sb = useSandbox();


  it('stops a catastrophically backtracking pattern with SCHEMA_TIMEOUT and serves others meanwhile', async () => {
    const schema = join(sb.dir, 'evil.schema.json');
    writeFileSync(schema, JSON.stringify({ type: 'string', pattern: '^(a+)+$' }));
    await ok(sb, ['queue', 'create', 'evil', '--schema', schema]);
    await ok(sb, ['queue', 'create', 'other']);
    const pid = await statusPid(sb);

    const evil = JSON.stringify(`${'a'.repeat(40)}!`);
    const slow = collect(sb.spawn(['publish', 'evil', '--data', evil]), { timeoutMs: 50_000 });
    // While that check runs, other clients publish and read.
    for (let i = 0; i < 3; i++) await ok(sb, ['publish', 'other', '--data', `served ${i}`]);
    expect((await listAll(sb, 'other')).map((m) => m.data)).toEqual(['served 0', 'served 1', 'served 2']);

    const refused = await slow;
    expectError(refused, 1, 'SCHEMA_TIMEOUT');
    expect(refused.stderr).toContain('pattern');

    // The checker recovers: matching data is stored, a short mismatch is an ordinary violation.
    const good = (await ok(sb, ['publish', 'evil', '--data', JSON.stringify('a'.repeat(40))])).trim();
    expectError(await sb.run(['publish', 'evil', '--data', JSON.stringify('aaa!')]), 1, 'SCHEMA_VIOLATION');
    expect((await listAll(sb, 'evil')).map((m) => m.id)).toEqual([good]);
    expect(await statusPid(sb)).toBe(pid);
  });

  it('names the failing line of an NDJSON batch checked off the main thread, and stores nothing of it', async () => {
    const schema = join(sb.dir, 'order.schema.json');
    writeFileSync(schema, JSON.stringify({ type: 'object', required: ['id'], properties: { id: { type: 'integer' } } }));
    await ok(sb, ['queue', 'create', 'orders', '--schema', schema]);
    const lines = ['{"id":1}', '{"id":2}', '{"id":"three"}', '{"id":4}'].map((data) => JSON.stringify({ data })).join('\n');
    const result = await sb.run(['publish', 'orders'], { input: lines + '\n' });
    expectError(result, 1, 'SCHEMA_VIOLATION');
    expect(result.stderr).toContain('line 3');
    expect(result.stderr).toContain('/id');
    expect(await listAll(sb, 'orders')).toEqual([]);
  });
});
