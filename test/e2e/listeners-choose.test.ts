/**
 * Listeners that choose (issue 13), end to end through the CLI and a real
 * daemon with real receivers: filters on the message name, replay from a
 * point, a rate limit, a liveness URL, and all of it across kill -9.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import { expectError, waitForExit } from '../helpers/discue.js';
import { addListener, closeAllServers, listDeliveries, mustRun, runJson, showListener, startHookServer } from '../helpers/delivery.js';
import type { Envelope, ListenerJson } from '../helpers/delivery.js';
import { firstIdAt, timeOfId } from '../../src/protocol/ids.js';

const sb = useBackendSandbox('dq-choose-');
afterEach(async () => {
  await closeAllServers();
});

/** Publishes one message per [data, name] (name undefined: none), in order; returns their ids. */
async function publish(queue: string, messages: [string, string | undefined][]): Promise<string[]> {
  const input = messages.map(([data, name]) => JSON.stringify(name === undefined ? { data } : { data, name })).join('\n') + '\n';
  return (await mustRun(sb, ['publish', queue], { input })).trim().split('\n');
}

const datas = (received: { envelope: Envelope }[]) => received.map((r) => r.envelope.data);

interface ChosenJson extends ListenerJson {
  filters?: string[];
  rate?: string;
  livenessUrl?: string;
  progress?: (NonNullable<ListenerJson['progress']>[number] & { throttled?: boolean; liveness?: string; pending?: number })[];
}

async function killDaemon(): Promise<void> {
  const pid = sb.daemonPid()!;
  process.kill(pid, 'SIGKILL');
  await waitForExit(pid, 'the daemon to die');
}

const BOOKSHOP: [string, string | undefined][] = [
  ['1001 created', 'order.created'],
  ['1001 paid', 'payment.succeeded'],
  ['1001 shipped', 'order.shipped'],
  ['1002 card declined', 'payment.failed'],
  ['no name at all', undefined],
  ['1002 created', 'order.created'],
  ['refund of 1001', 'order.refund.issued'],
  ['stock low', 'inventory.low'],
];

describeBackends('filters', () => {
  it("delivers only the bookshop's order.* and payment.failed; nameless and other names move the position without an attempt", async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const chosen = await startHookServer();
    const all = await startHookServer();
    const deep = await startHookServer();
    const l = (await addListener(sb, ['--queue', 'orders', '--url', chosen.url, '--name', 'dash', '--filter', 'order.*', '--filter', 'payment.failed'])) as ChosenJson;
    expect(l.filters).toEqual(['order.*', 'payment.failed']);
    await addListener(sb, ['--queue', 'orders', '--url', all.url, '--name', 'everything']);
    await addListener(sb, ['--queue', 'orders', '--url', deep.url, '--name', 'refunds', '--filter', 'order.>']);
    const ids = await publish('orders', BOOKSHOP);

    await waitFor(() => all.delivered.length === BOOKSHOP.length, 20_000, 'every message to the unfiltered listener');
    await waitFor(() => chosen.delivered.length === 4 && deep.delivered.length === 4, 20_000, 'the filtered deliveries');
    // `*` is one segment: order.refund.issued is not order.*; `>` takes the rest.
    expect(datas(chosen.delivered)).toEqual(['1001 created', '1001 shipped', '1002 card declined', '1002 created']);
    expect(datas(deep.delivered)).toEqual(['1001 created', '1001 shipped', '1002 created', 'refund of 1001']);
    // Skipped messages cost no attempt and leave no record; the position passes them all.
    expect(chosen.requests).toHaveLength(4);
    const shown = (await showListener(sb, 'dash')) as ChosenJson;
    await waitFor(async () => ((await showListener(sb, 'dash')).progress?.[0]?.cursor === ids[ids.length - 1]), 20_000, 'the position past the last, skipped, message');
    expect(shown.filters).toEqual(['order.*', 'payment.failed']);
    expect(await listDeliveries(sb, ['--listener', 'dash', '--state', 'dead'])).toEqual([]);
    // --wait does not hang on a listener whose filters skip the message.
    const waited = await sb.run(['publish', 'orders', '--data', 'shelf', '--name', 'inventory.low', '--wait', '--wait-timeout', '20s']);
    expect(waited.code, waited.stderr).toBe(0);

    // Shown by `listener show` and in the list's --json.
    const text = await mustRun(sb, ['listener', 'show', 'dash']);
    expect(text).toMatch(/filters:\s+order\.\* payment\.failed/);
    const list = await runJson<ChosenJson[]>(sb, ['listener', 'list']);
    expect(list.find((x) => x.name === 'dash')?.filters).toEqual(['order.*', 'payment.failed']);

    // update replaces them; --no-filter clears them.
    await mustRun(sb, ['listener', 'update', 'dash', '--filter', 'inventory.*']);
    await publish('orders', [['shipped again', 'order.shipped'], ['stock out', 'inventory.out']]);
    await waitFor(() => chosen.delivered.length === 5, 20_000, 'the message the new filter takes');
    expect(datas(chosen.delivered).slice(4)).toEqual(['stock out']);
    await mustRun(sb, ['listener', 'update', 'dash', '--no-filter']);
    expect(((await showListener(sb, 'dash')) as ChosenJson).filters).toBeUndefined();
    await publish('orders', [['anything', undefined]]);
    await waitFor(() => chosen.delivered.length === 6, 20_000, 'a nameless message once the filters are gone');
  });

  it('listen --filter prints only matching messages; bad globs are refused with INVALID_FILTER (exit 2)', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const listen = sb.spawn(['listen', 'orders', '--filter', 'order.shipped', '--count', '2', '--from', 'all']);
    let out = '';
    listen.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => listen.once('exit', (code) => resolve(code)));
    await publish('orders', BOOKSHOP);
    await publish('orders', [['1002 shipped', 'order.shipped']]);
    expect(await exited).toBe(0);
    expect(out.trim().split('\n')).toEqual(['1001 shipped', '1002 shipped']);

    for (const bad of ['ord*', 'order.>.x', 'order..x', '']) {
      expectError(await sb.run(['listener', 'add', '--queue', 'orders', '--url', 'http://127.0.0.1:9/', '--filter', bad]), 2, 'INVALID_FILTER');
    }
    expectError(await sb.run(['listen', 'orders', '--filter', 'a.*b']), 2, 'INVALID_FILTER');
    expectError(await sb.run(['listener', 'add', '--queue', 'orders', '--url', 'http://127.0.0.1:9/', '--rate', 'fast']), 2, 'INVALID_ARGUMENT');
  });
});

describeBackends('publish --wait', () => {
  it('reports a listener whose filters take none of the messages as skipped, not delivered, and does not wait for it', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const dash = await startHookServer();
    // The mailer's receiver fails: it is stuck retrying an older payment.failed, far behind.
    const mailer = await startHookServer(() => ({ status: 500, body: 'down' }));
    await addListener(sb, ['--queue', 'orders', '--url', dash.url, '--name', 'dash', '--filter', 'order.*']);
    await addListener(sb, ['--queue', 'orders', '--url', mailer.url, '--name', 'mailer', '--filter', 'payment.failed', '--max-attempts', '100']);
    await publish('orders', [['1002 card declined', 'payment.failed']]);
    await waitFor(() => mailer.requests.length >= 1, 20_000, 'the mailer failing');

    const result = await sb.run(['publish', 'orders', '--data', '1003 created', '--name', 'order.created', '--wait', '--wait-timeout', '20s', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as { deliveries: { name?: string; state: string }[] };
    expect(out.deliveries.map((d) => [d.name, d.state]).sort()).toEqual([
      ['dash', 'delivered'],
      ['mailer', 'skipped'],
    ]);
    expect(datas(mailer.delivered)).toEqual([]);

    // Said plainly on a terminal-less run too; a batch the mailer does take is waited for as before.
    const human = await sb.run(['publish', 'orders', '--data', '1004 created', '--name', 'order.created', '--wait', '--wait-timeout', '20s']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stderr).toContain('mailer: skipped (its filters take none of these messages: not sent)');
    expect(human.stderr).toContain('dash: delivered');
    const late = await sb.run(['publish', 'orders', '--data', '1005 declined', '--name', 'payment.failed', '--wait', '--wait-timeout', '1s']);
    expect(late.code, late.stderr).toBe(124);
    expect(late.stderr).toContain('mailer');
    expect(late.stderr).toContain('[TIMEOUT]');
  });
});

describeBackends('replay', () => {
  it('after the receiver lost its data, everything from the point arrives again in order; other listeners get nothing extra', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const dash = await startHookServer();
    const other = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', dash.url, '--name', 'dash', '--filter', 'order.>']);
    await addListener(sb, ['--queue', 'orders', '--url', other.url, '--name', 'other']);
    const early = await publish('orders', [['old 1', 'order.created'], ['old 2', 'order.created']]);
    const ids = await publish('orders', [['a', 'order.created'], ['b', 'inventory.low'], ['c', 'order.shipped'], ['d', 'order.paid']]);
    await waitFor(() => dash.delivered.length === 5 && other.delivered.length === 6, 20_000, 'the first deliveries');
    // The dashboard lost everything from `a` on.
    dash.delivered.length = 0;
    dash.requests.length = 0;

    // Without a terminal and without --yes it refuses, and says how to go on.
    const refused = await sb.run(['listener', 'replay', 'dash', '--since', ids[0]!]);
    expectError(refused, 2, 'CONFIRMATION_REQUIRED');
    expect(refused.stderr).toContain('3 messages');
    expect(refused.stderr).toContain('--yes');

    const result = await runJson<{ messages: number; queues: string[] }>(sb, ['listener', 'replay', 'dash', '--since', ids[0]!, '--yes']);
    expect(result).toEqual({ messages: 3, queues: ['orders'] });
    await waitFor(() => dash.delivered.length === 3, 20_000, 'the replay');
    expect(datas(dash.delivered)).toEqual(['a', 'c', 'd']);
    // A time replays from then: the early ones too.
    dash.delivered.length = 0;
    const since = new Date(Date.parse((await runJson<Envelope>(sb, ['messages', 'get', 'orders', early[0]!])).publishedAt)).toISOString();
    await mustRun(sb, ['listener', 'replay', 'dash', '--since', since, '--yes']);
    await waitFor(() => dash.delivered.length === 5, 20_000, 'the replay from a time');
    expect(datas(dash.delivered)).toEqual(['old 1', 'old 2', 'a', 'c', 'd']);

    // New messages still flow after it, to both; the other listener got nothing twice.
    await publish('orders', [['e', 'order.created']]);
    await waitFor(() => dash.delivered.length === 6 && other.delivered.length === 7, 20_000, 'the next message');
    expect(datas(other.delivered)).toEqual(['old 1', 'old 2', 'a', 'b', 'c', 'd', 'e']);

    expectError(await sb.run(['listener', 'replay', 'dash', '--since', '01JF8Z3K4M5N6P7Q8R9S0T1V2W', '--yes']), 4, 'MESSAGE_NOT_FOUND');
  });

  it('a dead delivery replayed and delivered is no longer dead: its history keeps the failed attempts, and retry --all-dead has nothing to send', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let up = false;
    const hook = await startHookServer(() => (up ? { status: 200, body: 'ok' } : { status: 500, body: 'down' }));
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'dash', '--max-attempts', '1']);
    const [id] = await publish('orders', [['a', 'order.created']]);
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 1, 20_000, 'the delivery to die');

    up = true;
    await mustRun(sb, ['listener', 'replay', 'dash', '--since', id!, '--yes']);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'the replayed delivery');
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'delivered'])).length === 1, 20_000, 'the delivered record');
    expect(await listDeliveries(sb, ['--state', 'dead'])).toEqual([]);
    const [done] = await listDeliveries(sb, ['--state', 'delivered']);
    expect(done!.messageId).toBe(id);
    // Both attempts, the failed one first, as Svix keeps a message's attempts.
    expect(done!.attempts.map((a) => [a.attempt, a.ok, a.status])).toEqual([
      [1, false, 500],
      [2, true, 200],
    ]);
    expect(await runJson<{ retried: number }>(sb, ['deliveries', 'retry', '--all-dead'])).toMatchObject({ retried: 0 });
    expect(hook.delivered).toHaveLength(1);
  });

  it('listener add --from TIME starts a new listener there', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    await publish('orders', [['before', 'x']]);
    const cut = Date.now();
    await waitFor(() => Date.now() > cut + 5, 1000, 'the clock to move');
    await publish('orders', [['after 1', 'x'], ['after 2', 'x']]);
    const hook = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--from', new Date(cut + 1).toISOString()]);
    await waitFor(() => hook.delivered.length === 2, 20_000, 'the messages from the time on');
    expect(datas(hook.delivered)).toEqual(['after 1', 'after 2']);
    expectError(await sb.run(['listener', 'add', '--queue', 'orders', '--url', hook.url, '--from', 'yesterday']), 2, 'USAGE');
  });
});

// On LevelDB only: the rate gate is the delivery worker's, above the backend (and its timing is the slowest to check).
describe('rate limit', () => {
  it('5/s holds over 20 messages, and the listener shows throttled, not failing', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'slow', '--rate', '5/s', '--concurrency', '4']);
    // The daemon's first HTTP delivery loads its HTTP client: sends started on time would
    // reach the receiver bunched up behind that load, so the measure starts after one.
    await publish('orders', [['warm-up', 'order.created']]);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'the warm-up delivery');
    hook.delivered.length = 0;
    await publish('orders', Array.from({ length: 20 }, (_, i): [string, string] => [`m${i}`, 'order.created']));
    const throttled = await waitFor(async () => ((await showListener(sb, 'slow')) as ChosenJson).progress?.[0]?.throttled === true, 10_000, 'throttled to show');
    expect(throttled).toBe(true);
    const table = await mustRun(sb, ['listener', 'list']);
    expect(table).toMatch(/slow.*throttled/);
    expect(table).not.toContain('failing');
    await waitFor(() => hook.delivered.length === 20, 30_000, 'all 20');
    const at = hook.delivered.map((r) => r.at);
    // Evenly spaced 200 ms apart: 19 gaps take at least 3.8 s (less a little for timer slack).
    expect(at[19]! - at[0]!).toBeGreaterThanOrEqual(3700);
    // No second holds more than 5 (+1 for a boundary falling between two sends).
    for (let i = 0; i + 6 < at.length; i++) expect(at[i + 6]! - at[i]!, `sends ${i}..${i + 6}`).toBeGreaterThanOrEqual(950);
    expect(new Set(datas(hook.delivered)).size).toBe(20);
  });
});

describeBackends('liveness', () => {
  it('while the liveness URL answers 503 no attempt is used up and nothing goes dead; everything arrives when it turns 200', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let up = false;
    let checks = 0;
    const hook = await startHookServer((req) => {
      if (req.path === '/healthz') {
        checks++;
        return { status: up ? 200 : 503 };
      }
      return { status: up ? 200 : 503, body: 'down' };
    });
    const health = hook.url.replace(/\/hook$/, '/healthz');
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'dash', '--liveness-url', health, '--max-attempts', '2', '--retry-delay', '10ms']);
    await publish('orders', [['a', 'order.created'], ['b', 'order.created'], ['c', 'order.created']]);
    // Down for a while: several checks, far more than max-attempts' worth of time.
    await waitFor(() => checks >= 4, 30_000, 'liveness checks while down');
    const down = (await showListener(sb, 'dash')) as ChosenJson;
    expect(down.progress?.[0]?.liveness).toBe('down');
    expect(down.progress?.[0]?.failedAttempts).toBe(0);
    expect(down.progress?.[0]?.dead).toBe(0);
    expect(await mustRun(sb, ['listener', 'list'])).toContain('receiver down');
    expect(await listDeliveries(sb, ['--listener', 'dash', '--state', 'dead'])).toEqual([]);
    up = true;
    await waitFor(() => hook.delivered.filter((r) => r.path === '/hook').length === 3, 30_000, 'everything once alive');
    expect(datas(hook.delivered.filter((r) => r.path === '/hook'))).toEqual(['a', 'b', 'c']);
    // One attempt each: the failures while it was down were not counted.
    const history = await listDeliveries(sb, ['--listener', 'dash', '--state', 'delivered']);
    expect(history.map((d) => d.attempts.length)).toEqual([1, 1, 1]);
    const after = (await showListener(sb, 'dash')) as ChosenJson;
    expect(after.progress?.[0]?.liveness).toBe('alive');
  });
});

describeBackends('across kill -9', () => {
  it('a listener keeps its filters, rate limit, liveness URL and replay position', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'dash', '--filter', 'order.*', '--rate', '50/s', '--liveness-url', 'http://127.0.0.1:9/healthz']);
    const ids = await publish('orders', [['a', 'order.created'], ['x', 'payment.failed'], ['b', 'order.shipped']]);
    await waitFor(() => hook.delivered.length === 2, 20_000, 'the first deliveries');
    await mustRun(sb, ['listener', 'pause', 'dash']);
    await mustRun(sb, ['listener', 'replay', 'dash', '--since', ids[0]!, '--yes']);
    await killDaemon();
    const back = (await showListener(sb, 'dash')) as ChosenJson;
    expect(back.filters).toEqual(['order.*']);
    expect(back.rate).toBe('50/s');
    expect(back.livenessUrl).toBe('http://127.0.0.1:9/healthz');
    // The replay's position survived: resuming sends a and b again, not x.
    await mustRun(sb, ['listener', 'resume', 'dash']);
    await waitFor(() => hook.delivered.length === 4, 20_000, 'the replay after the restart');
    expect(datas(hook.delivered)).toEqual(['a', 'b', 'a', 'b']);
  });
});

// NATS only: a LevelDB queue cannot hold ids out of sort order (its import refuses them).
describeBackends(
  'replay count',
  () => {
    it('counts from a message by its place in the queue, not by comparing ids (ids from two hosts need not sort in stream order)', async () => {
      // Stored in this order, as two hosts with clocks apart would store them: x's id sorts after m's.
      const t0 = Date.now() - 60_000;
      const [x, m, y] = [t0 + 5_000, t0 + 1_000, t0 + 6_000].map((ms) => firstIdAt(ms));
      const line = (id: string, data: string) => JSON.stringify({ type: 'message', id, queue: 'mixed', data, name: 'ev', publishedAt: new Date(timeOfId(id)).toISOString() });
      const file = [JSON.stringify({ type: 'queue', name: 'mixed' }), line(x!, 'x'), line(m!, 'm'), line(y!, 'y')].join('\n') + '\n';
      await mustRun(sb, ['import'], { input: file });
      const hook = await startHookServer();
      await addListener(sb, ['--queue', 'mixed', '--url', hook.url, '--name', 'h']);
      // From m: m and y go out (x was stored before m), and the count says so.
      const result = await runJson<{ messages: number }>(sb, ['listener', 'replay', 'h', '--since', m!, '--yes']);
      await waitFor(() => hook.delivered.length >= 2, 20_000, 'the replay');
      expect(datas(hook.delivered)).toEqual(['m', 'y']);
      expect(result.messages).toBe(2);
    });
  },
  ['nats'],
);
