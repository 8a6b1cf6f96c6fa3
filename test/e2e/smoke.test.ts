import { describe, expect, it } from 'vitest';
import { useSandbox } from '../helpers/sandbox.js';

describe('core flow through the real binary', () => {
  const sb = useSandbox();

  it('auto-starts the daemon, stores messages in order, lists them', async () => {
    expect((await sb.run(['queue', 'create', 'orders'])).code).toBe(0);
    const one = await sb.run(['publish', 'orders', '{"data":"first"}']);
    expect(one.code).toBe(0);
    const id1 = one.stdout.trim();
    expect(id1).toMatch(/^[0-9A-Z]{26}$/);
    const two = await sb.run(['publish', 'orders', '--data', 'plain text', '--name', 'note']);
    expect(two.code).toBe(0);
    const batch = await sb.run(['publish', 'orders'], { input: '{"data":"a"}\n{"data":"b"}\n' });
    expect(batch.code).toBe(0);
    expect(batch.stdout.trim().split('\n')).toHaveLength(2);

    const list = await sb.run(['messages', 'list', 'orders', '--json']);
    expect(list.code).toBe(0);
    const messages = JSON.parse(list.stdout) as { id: string; data: string; name?: string; queue: string }[];
    expect(messages.map((m) => m.data)).toEqual(['first', 'plain text', 'a', 'b']);
    expect(messages[0]!.id).toBe(id1);
    expect(messages[1]!.name).toBe('note');
    expect(messages.every((m) => m.queue === 'orders')).toBe(true);
    const ids = messages.map((m) => m.id);
    expect([...ids].sort()).toEqual(ids);

    const stop = await sb.run(['daemon', 'stop']);
    expect(stop.code).toBe(0);
    const status = await sb.run(['daemon', 'status']);
    expect(status.code).toBe(3);
  });
});
