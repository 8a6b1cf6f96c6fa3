/**
 * HTTP listeners through the real binary and daemon, against real receivers
 * on 127.0.0.1: the bookshop flow with Standard Webhooks signatures checked
 * independently, a receiver that is down for a while, one that always fails
 * (dead letters, then retry), Retry-After, 410 Gone and request timeouts;
 * each on both backends (LevelDB and NATS JetStream).
 */
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import {
  addListener,
  closeAllServers,
  lines,
  listDeliveries,
  mustRun,
  publishData,
  range,
  runJson,
  showListener,
  startHookServer,
  verifyWebhook,
  writeScript,
} from '../helpers/delivery.js';
import type { Envelope, Received } from '../helpers/delivery.js';

const sb = useBackendSandbox('dq-http-');
afterEach(async () => {
  await closeAllServers();
});

const ids = (list: Received[]) => list.map((r) => r.envelope.id);
const datas = (list: Received[]) => list.map((r) => r.envelope.data);

describeBackends('HTTP delivery', (backend) => {
  // What does not touch the backend (the HTTP sender, the command runner, the CLI) runs on LevelDB only.
  const levelOnly = it.skipIf(backend.kind === 'nats');

  it('bookshop: dashboard (HTTP, both queues) and mailer (command) get every message, in order, signed', async () => {
    await mustRun(sb, ['queue', 'create', 'payments']);
    await mustRun(sb, ['queue', 'create', 'shipping']);
    // The dashboard fails the first attempt of one message: its retry must carry the same webhook-id.
    let failedOnce = false;
    const dashboard = await startHookServer((req) => {
      if (req.envelope.data === 'paid #2' && !failedOnce) {
        failedOnce = true;
        return { status: 500, body: 'try again' };
      }
      return { status: 204 };
    });
    const added = await addListener(sb, [
      '--queue', 'payments', '--queue', 'shipping', '--url', dashboard.url, '--name', 'dashboard',
      '--header', 'Authorization: Bearer t0k3n', '--retry-delay', '50ms',
    ]);
    expect(added.name).toBe('dashboard');
    expect(added.queues.sort()).toEqual(['payments', 'shipping']);
    expect(added.secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    const secret = added.secret!;
    // Shown once; hidden afterwards unless asked for.
    const shown = await showListener(sb, 'dashboard');
    expect(shown.secret).toBeUndefined();
    expect(shown.hasSecret).toBe(true);
    expect((await showListener(sb, 'dashboard', true)).secret).toBe(secret);

    // The mailer runs in the directory `listener add` ran in, with data on stdin.
    const work = join(sb.dir, 'mailer');
    mkdirSync(join(work, 'in'), { recursive: true });
    writeScript(
      sb,
      'mailer/mail.sh',
      [
        'cat > "in/$DISCUE_MESSAGE_ID"',
        'printf "%s|%s|%s|%s|%s|%s|%s\\n" "$1" "$DISCUE_MESSAGE_ID" "$DISCUE_QUEUE" "$DISCUE_NAME" "$DISCUE_PUBLISHED_AT" "$DISCUE_ATTEMPT" "$DISCUE_LISTENER" >> mailer.log',
        'printf "%s\\n" "$DISCUE_MESSAGE" >> envelopes.ndjson',
        'echo "mail sent for $DISCUE_MESSAGE_ID"',
      ].join('\n'),
    );
    const mailer = await addListener(sb, ['--queue', 'shipping', '--exec', "./mail.sh 'to: customer'", '--name', 'mailer'], work);
    expect(mailer.command).toEqual(['./mail.sh', 'to: customer']);
    expect(mailer.secret).toBeUndefined();

    // Publishes interleaved across both queues, single and batched, with and without a name.
    const published: string[] = [];
    published.push((await mustRun(sb, ['publish', 'payments', '--data', 'paid #1', '--name', 'payment.received'])).trim());
    published.push((await mustRun(sb, ['publish', 'shipping', '{"data":"{\\"order\\":1,\\"carrier\\":\\"dhl\\"}","name":"order.shipped"}'])).trim());
    published.push(...(await publishData(sb, 'payments', ['paid #2', 'paid #3'], 'payment.received')));
    published.push(...(await publishData(sb, 'shipping', ['shipped #2 ✓ ünïcode', 'line one\nline two\n'])));
    published.push((await mustRun(sb, ['publish', 'payments', '--data', 'refund #1'])).trim());

    const payments = await runJson<Envelope[]>(sb, ['messages', 'list', 'payments']);
    const shipping = await runJson<Envelope[]>(sb, ['messages', 'list', 'shipping']);
    expect(payments.map((m) => m.data)).toEqual(['paid #1', 'paid #2', 'paid #3', 'refund #1']);
    expect(shipping.map((m) => m.data)).toEqual(['{"order":1,"carrier":"dhl"}', 'shipped #2 ✓ ünïcode', 'line one\nline two\n']);

    await waitFor(() => dashboard.delivered.length >= 7, 20_000, 'dashboard to get 7 messages');
    await waitFor(() => lines(join(work, 'mailer.log')).length >= 3, 20_000, 'mailer to run 3 times');

    // Dashboard: each queue's messages in publish order, each envelope exactly as stored.
    const byQueue = (q: string) => dashboard.delivered.filter((r) => r.envelope.queue === q).map((r) => JSON.parse(r.body) as Envelope);
    expect(byQueue('payments')).toEqual(payments);
    expect(byQueue('shipping')).toEqual(shipping);
    expect(dashboard.delivered).toHaveLength(7);
    for (const r of dashboard.delivered) {
      const envelope = JSON.parse(r.body) as Record<string, unknown>;
      // Exactly the envelope fields; name only where the message had one.
      expect(Object.keys(envelope).sort()).toEqual(
        'name' in envelope ? ['data', 'id', 'name', 'publishedAt', 'queue'] : ['data', 'id', 'publishedAt', 'queue'],
      );
    }
    expect(byQueue('payments')[0]!.name).toBe('payment.received');
    expect('name' in byQueue('payments')[3]!).toBe(false);

    // Standard Webhooks headers on every request, retries included.
    for (const r of dashboard.requests) {
      expect(r.method).toBe('POST');
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(r.headers['authorization']).toBe('Bearer t0k3n');
      expect(r.headers['webhook-id']).toBe(r.envelope.id);
      const ts = Number(r.headers['webhook-timestamp']);
      expect(Math.abs(ts - Math.floor(r.at / 1000))).toBeLessThanOrEqual(300);
      expect(r.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+={0,2}$/);
      expect(verifyWebhook(secret, r.headers, r.body), `signature of ${r.body}`).toBe(true);
      // The signature covers the body: tampering is detected.
      expect(verifyWebhook(secret, r.headers, r.body.replace('"data":"', '"data":"x'))).toBe(false);
    }
    // The failed first attempt and its retry: same webhook-id, each signed for its own timestamp.
    const paid2 = dashboard.requests.filter((r) => r.envelope.data === 'paid #2');
    expect(paid2).toHaveLength(2);
    expect(paid2[0]!.headers['webhook-id']).toBe(paid2[1]!.headers['webhook-id']);
    expect(paid2[0]!.body).toBe(paid2[1]!.body);

    // Mailer: data verbatim on stdin, metadata in DISCUE_*, argv split without a shell, in order.
    const log = lines(join(work, 'mailer.log')).map((l) => l.split('|'));
    expect(log.map((f) => f[1])).toEqual(shipping.map((m) => m.id));
    for (const [i, f] of log.entries()) {
      const m = shipping[i]!;
      expect(f).toEqual(['to: customer', m.id, 'shipping', m.name ?? '', m.publishedAt, '1', 'mailer']);
      expect(readFileSync(join(work, 'in', m.id), 'utf8')).toBe(m.data);
    }
    expect(readdirSync(join(work, 'in')).sort()).toEqual(shipping.map((m) => m.id).sort());
    const envelopes = lines(join(work, 'envelopes.ndjson')).map((l) => JSON.parse(l) as Envelope);
    expect(envelopes).toEqual(shipping);

    // Every published id went somewhere; the mailer's output tail is recorded.
    expect([...byQueue('payments'), ...byQueue('shipping')].map((m) => m.id).sort()).toEqual([...published].sort());
    const mailerHistory = await listDeliveries(sb, ['--listener', 'mailer', '--state', 'delivered']);
    expect(mailerHistory).toHaveLength(3);
    for (const d of mailerHistory) {
      expect(d.id).toBe(`${mailer.id}/${d.messageId}`);
      expect(d.attempts[0]!.exitCode).toBe(0);
      expect(d.attempts[0]!.output).toContain(`mail sent for ${d.messageId}`);
    }
  });

  it('uses a secret given with --secret; refuses bad secrets and headers discue sets itself', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer();
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const added = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--secret', secret, '--name', 'mine']);
    expect(added.secret).toBe(secret);
    await publishData(sb, 'orders', ['signed with mine']);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'the delivery');
    const r = hook.delivered[0]!;
    expect(verifyWebhook(secret, r.headers, r.body)).toBe(true);
    expect(verifyWebhook('whsec_' + Buffer.alloc(24, 7).toString('base64'), r.headers, r.body)).toBe(false);

    for (const args of [
      ['--secret', 'not-a-secret'],
      ['--secret', 'whsec_c2hvcnQ='],
      ['--header', 'webhook-id: forged'],
      ['--header', 'Content-Type: text/plain'],
    ]) {
      const result = await sb.run(['listener', 'add', '--queue', 'orders', '--url', hook.url, ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/\[(INVALID_ARGUMENT|USAGE)\]/);
    }
    expect((await sb.run(['listener', 'add', '--queue', 'orders', '--url', 'ftp://127.0.0.1/x'])).code).toBe(2);
    expect((await sb.run(['listener', 'add', '--queue', 'nope', '--url', hook.url])).code).toBe(4);
    expect(await runJson<unknown[]>(sb, ['listener', 'list'])).toHaveLength(1);
  });

  it('a receiver that answers 503, then is down, then comes back gets everything, in order, once', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer(() => ({ status: 503, body: 'maintenance' }));
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--retry-delay', '50ms', '--max-attempts', '1000']);
    const first = await publishData(sb, 'orders', range(20, 'early-'));

    // One in flight by default: until the first succeeds, only it is tried.
    await waitFor(() => hook.requests.length >= 3, 20_000, '3 failed attempts');
    await hook.close();
    const second = await publishData(sb, 'orders', range(10, 'late-'));
    // The daemon sees the receiver gone (connection refused) and keeps retrying.
    await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id])).some((d) => d.attempts.some((a) => /ECONNREFUSED|connect/i.test(a.error ?? ''))),
      20_000,
      'a refused connection to be recorded',
    );
    const failing = await listDeliveries(sb, ['--listener', l.id]);
    expect(failing).toHaveLength(1);
    expect(failing[0]!.messageId).toBe(first[0]);
    expect(['failed', 'pending']).toContain(failing[0]!.state);
    expect(failing[0]!.attempts.some((a) => a.status === 503 && a.output === 'maintenance')).toBe(true);
    expect(new Set(ids(hook.requests))).toEqual(new Set([first[0]]));

    hook.respond(() => ({ status: 200 }));
    await hook.reopen();
    await waitFor(() => hook.delivered.length >= 30, 30_000, 'all 30 after the receiver came back');
    expect(ids(hook.delivered)).toEqual([...first, ...second]);
    expect(datas(hook.delivered)).toEqual([...range(20, 'early-'), ...range(10, 'late-')]);
    // Nothing left open.
    await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id])).length === 0, 10_000, 'no open deliveries');
    const progress = (await showListener(sb, l.id)).progress!;
    expect(progress[0]!.cursor).toBe(second[second.length - 1]);
  });

  it('a receiver that always fails: dead after max attempts with every attempt recorded, then retry delivers', async () => {
    const started = Date.now();
    await mustRun(sb, ['queue', 'create', 'orders']);
    let broken = true;
    let n = 0;
    const hook = await startHookServer(() => (broken ? { status: 500, body: `boom ${++n}` } : { status: 200 }));
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'flaky', '--retry-delay', '50ms', '--max-attempts', '3']);
    const published = await publishData(sb, 'orders', ['a', 'b', 'c']);

    const dead = await waitFor(
      async () => {
        const list = await listDeliveries(sb, ['--state', 'dead']);
        return list.length === 3 ? list : undefined;
      },
      30_000,
      'three dead deliveries',
    );
    expect(dead.map((d) => d.messageId).sort()).toEqual([...published].sort());
    for (const d of dead) {
      expect(d.id).toBe(`${l.id}/${d.messageId}`);
      expect(d.listenerName).toBe('flaky');
      expect(d.queue).toBe('orders');
      expect(d.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
      for (const a of d.attempts) {
        expect(a.ok).toBe(false);
        expect(a.status).toBe(500);
        expect(a.output).toMatch(/^boom \d+$/);
        // Made during this test, and timed in whole milliseconds that fit inside it.
        expect(Date.parse(a.at)).toBeGreaterThanOrEqual(started - 1000);
        expect(Number.isInteger(a.durationMs) && a.durationMs >= 0, `durationMs ${a.durationMs}`).toBe(true);
        expect(a.durationMs).toBeLessThanOrEqual(Date.now() - started);
      }
    }
    // Exactly max-attempts requests per message; the cursor moved on after each death, in order.
    expect(hook.requests).toHaveLength(9);
    expect(ids(hook.requests)).toEqual([published[0], published[0], published[0], published[1], published[1], published[1], published[2], published[2], published[2]]);
    // The table view names the state too.
    const table = await mustRun(sb, ['deliveries', 'list', '--state', 'dead']);
    expect(table).toContain(`${l.id}/${published[0]}`);
    expect(table).toContain('dead');

    // Retry one by id while still broken: a fresh round of max-attempts, then dead again.
    const one = await runJson<{ retried: number }>(sb, ['deliveries', 'retry', `${l.id}/${published[1]}`]);
    expect(one.retried).toBe(1);
    await waitFor(() => hook.requests.length >= 12, 20_000, 'a fresh round of 3 attempts');
    const again = await waitFor(
      async () => (await listDeliveries(sb, ['--state', 'dead'])).find((d) => d.messageId === published[1] && d.attempts.length === 6),
      20_000,
      'the retried delivery dead again after 3 more attempts',
    );
    expect(again.attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(ids(hook.requests.slice(9))).toEqual([published[1], published[1], published[1]]);

    // Fixed: --all-dead sends all three again, and they are delivered.
    broken = false;
    const all = await runJson<{ retried: number }>(sb, ['deliveries', 'retry', '--all-dead']);
    expect(all.retried).toBe(3);
    await waitFor(() => hook.delivered.length >= 3, 20_000, 'the three retried deliveries');
    expect(ids(hook.delivered).sort()).toEqual([...published].sort());
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 0, 10_000, 'no dead deliveries left');
    const history = await listDeliveries(sb, ['--listener', 'flaky', '--state', 'delivered']);
    expect(history.map((d) => d.messageId).sort()).toEqual([...published].sort());
    for (const d of history) expect(d.attempts[d.attempts.length - 1]!.ok).toBe(true);
    // Nothing more to retry.
    expect((await runJson<{ retried: number }>(sb, ['deliveries', 'retry', '--all-dead'])).retried).toBe(0);
    const missing = await sb.run(['deliveries', 'retry', `${l.id}/${published[0]}`]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('[DELIVERY_NOT_FOUND]');
  });

  it('a retry after a receiver-fixed dead delivery keeps retrying within its fresh round', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let answers = [500, 500, 503, 200];
    const hook = await startHookServer(() => ({ status: answers.shift() ?? 200 }));
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--retry-delay', '50ms', '--max-attempts', '2']);
    const [id] = await publishData(sb, 'orders', ['x']);
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 1, 20_000, 'dead after 2 attempts');
    // The receiver is still flaky for one more request: the retry's second attempt succeeds.
    const retried = await runJson<{ retried: number }>(sb, ['deliveries', 'retry', `${l.id}/${id}`]);
    expect(retried.retried).toBe(1);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'delivered within the fresh round');
    expect(hook.requests).toHaveLength(4);
    expect(answers).toEqual([]);
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 0, 10_000, 'not dead any more');
  });

  it('retrying a dead delivery whose message was deleted since drops it instead of leaving it pending', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer(() => ({ status: 500 }));
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--max-attempts', '1']);
    const [gone, kept] = await publishData(sb, 'orders', ['deleted later', 'kept']);
    await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead'])).length === 2, 20_000, 'two dead');
    await mustRun(sb, ['messages', 'delete', 'orders', gone!]);
    hook.respond(() => ({ status: 200 }));
    expect((await runJson<{ retried: number }>(sb, ['deliveries', 'retry', '--all-dead'])).retried).toBe(2);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'the kept one');
    expect(hook.delivered[0]!.envelope.id).toBe(kept);
    await waitFor(async () => (await listDeliveries(sb, ['--listener', l.id])).length === 0, 20_000, 'no record left open');
    await mustRun(sb, ['daemon', 'restart']);
    expect(await listDeliveries(sb, ['--listener', l.id])).toEqual([]);
    expect(hook.requests.filter((r) => r.envelope.id === gone)).toHaveLength(1);
  });

  it('honours Retry-After (seconds and HTTP date) before the next attempt', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    let retryAt = 0;
    const hook = await startHookServer((req, index) => {
      if (index === 0) return { status: 503, headers: { 'retry-after': '2' } };
      if (index === 2) {
        // An HTTP date two whole seconds ahead (HTTP dates have second resolution).
        retryAt = (Math.floor(Date.now() / 1000) + 3) * 1000;
        return { status: 429, headers: { 'retry-after': new Date(retryAt).toUTCString() } };
      }
      return { status: 200 };
    });
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--retry-delay', '10ms', '--max-attempts', '5']);
    const published = await publishData(sb, 'orders', ['first', 'second']);
    await waitFor(() => hook.delivered.length >= 2, 30_000, 'both delivered');
    expect(ids(hook.requests)).toEqual([published[0], published[0], published[1], published[1]]);
    const [a, b, c, d] = hook.requests as [Received, Received, Received, Received];
    // The retry comes no earlier than the receiver asked (never an upper bound: busy machines are slow).
    expect(b.at - a.at).toBeGreaterThanOrEqual(1990);
    expect(d.at).toBeGreaterThanOrEqual(retryAt - 10);
    expect(d.at - c.at).toBeGreaterThanOrEqual(1000);
  });

  it('410 Gone disables the listener; resume delivers from where it stopped', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const witness = await startHookServer();
    await addListener(sb, ['--queue', 'orders', '--url', witness.url]);
    const hook = await startHookServer(() => ({ status: 410, body: 'endpoint retired' }));
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--name', 'retired', '--retry-delay', '50ms']);
    const published = await publishData(sb, 'orders', ['one', 'two', 'three']);

    const disabled = await waitFor(
      async () => {
        const info = await showListener(sb, 'retired');
        return info.state === 'disabled' ? info : undefined;
      },
      20_000,
      'the listener to be disabled',
    );
    expect(disabled.disabledReason).toMatch(/410/);
    // The other listener is unaffected.
    await waitFor(() => witness.delivered.length === 3, 20_000, 'the witness to get all three');
    expect(hook.requests).toHaveLength(1);
    const list = await runJson<{ id: string; state: string }[]>(sb, ['listener', 'list']);
    expect(list.find((x) => x.id === l.id)!.state).toBe('disabled');
    // Still disabled after more messages: nothing is sent.
    await publishData(sb, 'orders', ['four']);
    await waitFor(() => witness.delivered.length === 4, 20_000, 'the witness to get the fourth');
    expect(hook.requests).toHaveLength(1);

    hook.respond(() => ({ status: 200 }));
    const resumed = await runJson<{ state: string }>(sb, ['listener', 'resume', 'retired']);
    expect(resumed.state).toBe('active');
    await waitFor(() => hook.delivered.length >= 4, 20_000, 'all four after resume');
    expect(datas(hook.delivered)).toEqual(['one', 'two', 'three', 'four']);
    expect(hook.requests[0]!.headers['webhook-id']).toBe(published[0]);
    expect(hook.requests[1]!.headers['webhook-id']).toBe(published[0]);
    expect((await showListener(sb, 'retired')).state).toBe('active');
  });

  it('an HTTP request that times out is a failed attempt; the next attempt succeeds', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer((_req, index) => (index === 0 ? 'hang' : { status: 200, body: 'fine' }));
    // A whole second: the first request must reach the receiver before its deadline, and a
    // daemon starved of CPU on a busy machine can take hundreds of ms to connect and write.
    const l = await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--timeout', '1s', '--retry-delay', '50ms', '--max-attempts', '3']);
    const [id] = await publishData(sb, 'orders', ['slow']);
    await waitFor(() => hook.delivered.length === 1, 20_000, 'delivered on the second attempt');
    const history = await waitFor(
      async () => (await listDeliveries(sb, ['--listener', l.id, '--state', 'delivered'])).find((d) => d.messageId === id),
      10_000,
      'the delivery in the history',
    );
    expect(history.attempts).toHaveLength(2);
    expect(history.attempts[0]!.ok).toBe(false);
    expect(history.attempts[0]!.status).toBeUndefined();
    expect(history.attempts[0]!.error).toMatch(/time/i);
    expect(history.attempts[0]!.durationMs).toBeGreaterThanOrEqual(950);
    expect(history.attempts[1]).toMatchObject({ ok: true, status: 200, output: 'fine' });
    expect(hook.requests.map((r) => r.headers['webhook-id'])).toEqual([id, id]);
  });

  levelOnly('listeners on one receiver host do not queue behind each other for connections: 80 slow receivers all get their request at once', async () => {
    const LISTENERS = 80;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const hook = await startHookServer(async () => {
      await released;
      return { status: 200, body: 'ok' };
    });
    await mustRun(sb, ['queue', 'create', 'orders']);
    // Added in a few waves: 80 CLI processes at once would only measure the machine.
    for (let i = 0; i < LISTENERS; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => mustRun(sb, ['listener', 'add', '--queue', 'orders', '--url', hook.url, '--name', `hook-${i + j}`])));
    }
    await mustRun(sb, ['publish', 'orders', '--data', 'order 1']);
    // Each listener's one delivery is out at the same time, each on a connection of its own.
    await waitFor(() => hook.requests.length === LISTENERS, 30_000, `all ${LISTENERS} requests in flight at once`);
    release();
    await waitFor(() => hook.delivered.length === LISTENERS, 30_000, 'every delivery answered');
  });

  levelOnly('--timeout bounds the whole attempt: a response body that trickles in forever is a timeout', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const timers: NodeJS.Timeout[] = [];
    const hook = await startHookServer(() => ({
      raw: (res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        // A byte every 200 ms, well inside any idle timeout, for a minute.
        let n = 0;
        const timer = setInterval(() => {
          if (res.destroyed || ++n > 300) {
            clearInterval(timer);
            res.end();
          } else res.write('.');
        }, 200);
        timers.push(timer);
      },
    }));
    try {
      await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--timeout', '1s', '--max-attempts', '1']);
      await publishData(sb, 'orders', ['slow body']);
      const dead = await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead']))[0], 30_000, 'dead after the timeout');
      expect(dead.attempts).toHaveLength(1);
      expect(dead.attempts[0]!.ok).toBe(false);
      expect(dead.attempts[0]!.error).toMatch(/time/i);
      expect(dead.attempts[0]!.durationMs).toBeGreaterThanOrEqual(950);
    } finally {
      for (const t of timers) clearInterval(t);
    }
  });

  levelOnly('a receiver that always hangs: every attempt times out and the delivery dies', async () => {
    await mustRun(sb, ['queue', 'create', 'orders']);
    const hook = await startHookServer(() => 'hang');
    // A whole second, so that each request reaches the receiver before its deadline even when
    // the daemon is starved of CPU (a deadline that fires before the request is written is
    // still a timeout, but the receiver would not see it and the count below would not hold).
    await addListener(sb, ['--queue', 'orders', '--url', hook.url, '--timeout', '1s', '--retry-delay', '20ms', '--max-attempts', '2']);
    const [id] = await publishData(sb, 'orders', ['never']);
    const dead = await waitFor(async () => (await listDeliveries(sb, ['--state', 'dead']))[0], 20_000, 'dead');
    expect(dead.messageId).toBe(id);
    expect(dead.attempts).toHaveLength(2);
    for (const a of dead.attempts) {
      expect(a.ok).toBe(false);
      expect(a.error).toMatch(/time/i);
      expect(a.durationMs).toBeGreaterThanOrEqual(950);
    }
    // The receiver records a request once its body is read: the second may be recorded after the
    // daemon has already written the death down, so wait for it rather than expect it at once.
    await waitFor(() => hook.requests.length >= 2, 10_000, 'the receiver to record both attempts');
    expect(ids(hook.requests)).toEqual([id, id]);
  });
});
