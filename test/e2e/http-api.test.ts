/**
 * The HTTP API through real HTTP on 127.0.0.1 against the real daemon started
 * by the CLI: the bookshop with curl alone, every route's happy path and
 * errors, 401/403 per scope, SSE order and resume, CloudEvents, the OpenAPI
 * document against the routes that answer, the loopback rule, the body limit
 * and a slowloris client.
 */
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from '../helpers/sandbox.js';
import { describeBackends, useBackendSandbox } from '../helpers/backends.js';
import { expectError, ok } from '../helpers/discue.js';
import { expectHttpError, startApi } from '../helpers/http.js';
import { closeAllServers, startHookServer, verifyWebhook } from '../helpers/delivery.js';
import type { Api } from '../helpers/http.js';

const exec = promisify(execFile);

const sb = useBackendSandbox('dq-api-');
afterEach(async () => {
  await closeAllServers();
});

async function curl(...args: string[]): Promise<{ status: number; body: any }> {
  const { stdout } = await exec('curl', ['-s', '-w', '\n%{http_code}', ...args]);
  const lines = stdout.split('\n');
  const status = Number(lines.pop());
  const text = lines.join('\n');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // text
  }
  return { status, body };
}

/** An SSE connection: the events as they arrive, and a way to drop it. */
function sse(url: string, token: string, lastEventId?: string) {
  const events: { id: string; event: string; data: any }[] = [];
  let comments = 0;
  let status = 0;
  let buffer = '';
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
  if (lastEventId) headers['last-event-id'] = lastEventId;
  const req = httpRequest(url, { headers }, (res) => {
    status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments++;
          const m = /^(\w+): ?(.*)$/.exec(line);
          if (m) fields[m[1]!] = m[2]!;
        }
        if (fields.data !== undefined) events.push({ id: fields.id ?? '', event: fields.event ?? 'message', data: JSON.parse(fields.data) });
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return {
    events,
    get status() {
      return status;
    },
    get comments() {
      return comments;
    },
    close: () => req.destroy(),
  };
}

describeBackends('HTTP API', () => {
  it('the bookshop flow, driven by curl alone', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    const ci = await api.token('ci', 'publish:orders');
    const auth = (t: string) => ['-H', `Authorization: Bearer ${t}`];
    expect((await curl(...auth(admin), '-d', '{"name":"orders"}', `${api.url}/v1/queues`)).status).toBe(201);
    // curl -d sends application/x-www-form-urlencoded: read as JSON, as the README shows.
    const published = await curl(...auth(ci), '-d', '{"data":"Order 1001 shipped","name":"order.shipped"}', `${api.url}/v1/queues/orders/messages`);
    expect(published.status).toBe(201);
    expect(published.body.ids).toHaveLength(1);
    const batch = await curl(...auth(ci), '-H', 'Content-Type: application/x-ndjson', '--data-binary', '{"data":"1002"}\n{"data":"1003"}\n', `${api.url}/v1/queues/orders/messages`);
    expect(batch.status).toBe(201);
    expect(batch.body.ids).toHaveLength(2);
    const listed = await curl(...auth(admin), `${api.url}/v1/queues/orders/messages?limit=10`);
    expect(listed.body.messages.map((m: { data: string }) => m.data)).toEqual(['Order 1001 shipped', '1002', '1003']);
    // The CLI sees the same queue.
    expect(JSON.parse(await ok(sb, ['queue', 'show', 'orders', '--json'])).messages).toBe(3);
    const health = await curl(`${api.url}/healthz`);
    expect(health).toEqual({ status: 200, body: { ok: true } });
  });
});

// The routes' details below go through the same daemon handlers whatever the backend: on LevelDB only.
describe('HTTP API', () => {
  it('queues: create, list, get, update, purge, delete, with their errors', async () => {
    const api = await startApi(sb);
    const t = await api.token('admin', 'admin');
    expect((await api.request('POST', '/v1/queues', { token: t, body: { name: 'orders', retentionMs: 60000 } })).status).toBe(201);
    expectHttpError(await api.request('POST', '/v1/queues', { token: t, body: { name: 'orders' } }), 409, 'QUEUE_EXISTS');
    expectHttpError(await api.request('POST', '/v1/queues', { token: t, body: { name: 'bad name' } }), 400, 'INVALID_QUEUE_NAME');
    expectHttpError(await api.request('POST', '/v1/queues', { token: t, raw: '{', headers: { 'content-type': 'application/json' } }), 400, 'INVALID_JSON');
    const list = await api.request('GET', '/v1/queues', { token: t });
    expect(list.body.map((q: { name: string }) => q.name)).toEqual(['orders']);
    expect((await api.request('GET', '/v1/queues/orders', { token: t })).body.retentionMs).toBe(60000);
    expectHttpError(await api.request('GET', '/v1/queues/nope', { token: t }), 404, 'QUEUE_NOT_FOUND');
    const updated = await api.request('PATCH', '/v1/queues/orders', { token: t, body: { retentionMs: null, maxMessages: 5 } });
    expect(updated.status).toBe(200);
    expect(updated.body.retentionMs).toBeUndefined();
    expect(updated.body.maxMessages).toBe(5);
    await api.request('POST', '/v1/queues/orders/messages', { token: t, body: [{ data: 'a' }, { data: 'b' }] });
    expectHttpError(await api.request('DELETE', '/v1/queues/orders', { token: t }), 409, 'QUEUE_NOT_EMPTY');
    expect((await api.request('POST', '/v1/queues/orders/rename', { token: t, body: { to: 'sales' } })).body).toMatchObject({ name: 'sales', messages: 2 });
    expectHttpError(await api.request('GET', '/v1/queues/orders', { token: t }), 404, 'QUEUE_NOT_FOUND');
    expect((await api.request('POST', '/v1/queues/sales/rename', { token: t, body: { to: 'orders' } })).status).toBe(200);
    expect((await api.request('POST', '/v1/queues/orders/purge', { token: t })).body).toEqual({ name: 'orders', deleted: 2 });
    await api.request('POST', '/v1/queues/orders/messages', { token: t, body: { data: 'c' } });
    expect((await api.request('DELETE', '/v1/queues/orders?force=true', { token: t })).body).toEqual({ name: 'orders', deleted: 1 });
    expectHttpError(await api.request('DELETE', '/v1/queues/orders', { token: t }), 404, 'QUEUE_NOT_FOUND');
    expectHttpError(await api.request('GET', '/v1/nothing', { token: t }), 404, 'ROUTE_NOT_FOUND');
    const wrongMethod = await api.request('PUT', '/v1/queues', { token: t });
    expectHttpError(wrongMethod, 405, 'METHOD_NOT_ALLOWED');
    expect(wrongMethod.headers.get('allow')).toBe('GET, POST, HEAD, OPTIONS');
    // OPTIONS names a path's methods, without a token (the route table is public: /openapi.json).
    const options = await api.request('OPTIONS', '/v1/queues/orders/messages');
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('POST, GET, HEAD, OPTIONS');
    expect(options.body).toBe('');
    expectHttpError(await api.request('OPTIONS', '/v1/nothing'), 404, 'ROUTE_NOT_FOUND');
  });

  it('messages: publish one, an array, NDJSON; page with next; get; delete; bad input and schema', async () => {
    const api = await startApi(sb);
    const t = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: t, body: { name: 'orders', schema: { type: 'object', required: ['n'] } } });
    const one = await api.request('POST', '/v1/queues/orders/messages', { token: t, body: { data: '{"n":1}', name: 'n' } });
    expect(one.status).toBe(201);
    const many = await api.request('POST', '/v1/queues/orders/messages', { token: t, body: [2, 3, 4, 5].map((n) => ({ data: `{"n":${n}}` })) });
    expect(many.body.ids).toHaveLength(4);
    expectHttpError(await api.request('POST', '/v1/queues/orders/messages', { token: t, body: { data: '{}' } }), 422, 'SCHEMA_VIOLATION');
    expectHttpError(await api.request('POST', '/v1/queues/orders/messages', { token: t, body: { data: 1 } }), 400, 'INVALID_MESSAGE');
    expectHttpError(await api.request('POST', '/v1/queues/orders/messages', { token: t, body: { data: 'x', extra: 1 } }), 400, 'INVALID_MESSAGE');
    expectHttpError(await api.request('POST', '/v1/queues/orders/messages', { token: t, raw: 'x', headers: { 'content-type': 'image/png' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectHttpError(await api.request('POST', '/v1/queues/nope/messages', { token: t, body: { data: 'x' } }), 404, 'QUEUE_NOT_FOUND');
    expectHttpError(await api.request('POST', '/v1/queues/orders/messages', { token: t, body: { data: 'x'.repeat(256 * 1024 + 1) } }), 413, 'MESSAGE_TOO_LARGE');
    // Idempotency-Key: the second publish stores nothing and answers with the first id.
    const keyed = { token: t, body: { data: '{"n":6}' }, headers: { 'idempotency-key': 'order-6' } };
    const first = await api.request('POST', '/v1/queues/orders/messages', keyed);
    const again = await api.request('POST', '/v1/queues/orders/messages', keyed);
    expect(again.body.ids).toEqual(first.body.ids);
    expect(again.body.duplicates).toEqual([0]);
    // Pages of 2, until a page holds no messages.
    const seen: string[] = [];
    let next: string | undefined;
    for (;;) {
      const page = await api.request('GET', `/v1/queues/orders/messages?limit=2${next ? `&next=${next}` : ''}`, { token: t });
      expect(page.status).toBe(200);
      if (page.body.messages.length === 0) break;
      expect(page.body.messages.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.messages.map((m: { data: string }) => JSON.parse(m.data).n));
      next = page.body.next;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    const id = one.body.ids[0];
    expect((await api.request('GET', `/v1/queues/orders/messages/${id}`, { token: t })).body).toMatchObject({ id, name: 'n', data: '{"n":1}' });
    expect((await api.request('DELETE', `/v1/queues/orders/messages/${id}`, { token: t })).body).toEqual({ id });
    expectHttpError(await api.request('GET', `/v1/queues/orders/messages/${id}`, { token: t }), 404, 'MESSAGE_NOT_FOUND');
    expectHttpError(await api.request('GET', '/v1/queues/orders/messages/not-an-id', { token: t }), 400, 'INVALID_ARGUMENT');
    expectHttpError(await api.request('GET', '/v1/queues/orders/messages?limit=x', { token: t }), 400, 'INVALID_ARGUMENT');
  });

  it('listeners and deliveries: add (secret once), list, get, pause, resume, retry, remove; stats', async () => {
    const api = await startApi(sb);
    const t = await api.token('hooks', 'listeners');
    const admin = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    // Nothing listens on port 9: every attempt fails, and the delivery dies after one.
    const added = await api.request('POST', '/v1/listeners', {
      token: t,
      body: { kind: 'http', queues: ['orders'], url: 'http://127.0.0.1:9/hook', name: 'hook', maxAttempts: 1 },
    });
    expect(added.status).toBe(201);
    expect(added.body.secret).toMatch(/^whsec_/);
    expect((await api.request('GET', '/v1/listeners/hook', { token: t })).body.secret).toBeUndefined();
    expectHttpError(await api.request('POST', '/v1/listeners', { token: t, body: { kind: 'http', queues: ['orders'], url: 'http://127.0.0.1:9/', name: 'hook' } }), 409, 'LISTENER_EXISTS');
    // A command listener runs programs as the daemon's user: admin only.
    expectHttpError(await api.request('POST', '/v1/listeners', { token: t, body: { kind: 'exec', queues: ['orders'], command: 'true' } }), 403, 'FORBIDDEN');
    expect((await api.request('GET', '/v1/listeners?queue=orders', { token: t })).body.map((l: { name: string }) => l.name)).toEqual(['hook']);
    expect((await api.request('POST', '/v1/listeners/hook/pause', { token: t })).body.state).toBe('paused');
    expect((await api.request('POST', '/v1/listeners/hook/resume', { token: t })).body.state).toBe('active');
    await api.request('POST', '/v1/queues/orders/messages', { token: admin, body: { data: 'x' } });
    const dead = await waitFor(async () => {
      const list = await api.request('GET', '/v1/deliveries?state=dead', { token: t });
      return list.body.length === 1 ? list.body[0] : undefined;
    }, 20_000, 'a dead delivery');
    expect(dead.listenerName).toBe('hook');
    // ?wait=true answers with what each listener did: here, a dead delivery.
    const waited = await api.request('POST', '/v1/queues/orders/messages?wait=true&waitTimeoutMs=20000', { token: admin, body: { data: 'y' } });
    expect(waited.status).toBe(201);
    expect(waited.body.deliveries).toHaveLength(1);
    expect(waited.body.deliveries[0]).toMatchObject({ name: 'hook', state: 'dead' });
    expect((await api.request('POST', '/v1/deliveries/retry', { token: t, body: { id: dead.id } })).body).toEqual({ retried: 1 });
    expectHttpError(await api.request('POST', '/v1/deliveries/retry', { token: t, body: {} }), 400, 'INVALID_ARGUMENT');
    expectHttpError(await api.request('GET', '/v1/deliveries?state=weird', { token: t }), 400, 'INVALID_ARGUMENT');
    const stats = await api.request('GET', '/v1/stats', { token: admin });
    expect(stats.body.queues.map((q: { name: string }) => q.name)).toEqual(['orders']);
    expect((await api.request('DELETE', '/v1/listeners/hook', { token: t })).body.id).toBe(added.body.id);
    expectHttpError(await api.request('GET', '/v1/listeners/hook', { token: t }), 404, 'LISTENER_NOT_FOUND');
  });

  it('listeners choose over HTTP: PATCH sets and clears filters, replay counts (dryRun) and delivers again', async () => {
    const api = await startApi(sb);
    const t = await api.token('hooks', 'listeners');
    const admin = await api.token('admin', 'admin');
    const hook = await startHookServer();
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    const added = await api.request('POST', '/v1/listeners', { token: t, body: { kind: 'http', queues: ['orders'], url: hook.url, name: 'dash' } });
    expect(added.status).toBe(201);
    const patched = await api.request('PATCH', '/v1/listeners/dash', { token: t, body: { filters: ['order.*'] } });
    expect(patched.status).toBe(200);
    expect(patched.body.filters).toEqual(['order.*']);
    expectHttpError(await api.request('PATCH', '/v1/listeners/dash', { token: t, body: { filters: ['ord*'] } }), 400, 'INVALID_FILTER');
    expectHttpError(await api.request('PATCH', '/v1/listeners/nobody', { token: t, body: { filters: null } }), 404, 'LISTENER_NOT_FOUND');
    const body = [
      { name: 'order.shipped', data: 'a' },
      { name: 'payment.failed', data: 'b' },
      { name: 'order.paid', data: 'c' },
    ];
    await api.request('POST', '/v1/queues/orders/messages', { token: admin, body });
    await waitFor(() => hook.delivered.length === 2, 20_000, 'the two order events');
    expect(hook.delivered.map((r) => r.envelope.data)).toEqual(['a', 'c']);

    // Cleared filters, then a replay from the first message: all three go out again, in order.
    expect((await api.request('PATCH', '/v1/listeners/dash', { token: t, body: { filters: null } })).body.filters).toBeUndefined();
    const first = hook.delivered[0]!.envelope.id;
    const counted = await api.request('POST', '/v1/listeners/dash/replay', { token: t, body: { messageId: first, dryRun: true } });
    expect(counted.body).toEqual({ messages: 3, queues: ['orders'] });
    expect(hook.delivered).toHaveLength(2);
    const replayed = await api.request('POST', '/v1/listeners/dash/replay', { token: t, body: { messageId: first } });
    expect(replayed.body.messages).toBe(3);
    await waitFor(() => hook.delivered.length === 5, 20_000, 'the replayed messages');
    expect(hook.delivered.slice(2).map((r) => r.envelope.data)).toEqual(['a', 'b', 'c']);
    const publisher = await api.token('pub', 'publish');
    expectHttpError(await api.request('POST', '/v1/listeners/dash/replay', { token: publisher, body: { sinceMs: 0 } }), 403, 'FORBIDDEN');
  });

  it('401 without or with a bad token, 403 per scope, and neither tells whether the queue exists', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    const tokens = {
      publishOrders: await api.token('p1', 'publish:orders'),
      publish: await api.token('p2', 'publish'),
      readOrders: await api.token('r1', 'read:orders'),
      read: await api.token('r2', 'read'),
      listeners: await api.token('l', 'listeners'),
      metrics: await api.token('m', 'metrics'),
    };
    const msg = { data: 'x' };
    for (const queue of ['orders', 'ghost']) {
      const path = `/v1/queues/${queue}/messages`;
      const none = await api.request('POST', path, { body: msg });
      expectHttpError(none, 401, 'UNAUTHORIZED');
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      expectHttpError(await api.request('POST', path, { token: 'dq_nope', body: msg }), 401, 'UNAUTHORIZED');
      expectHttpError(await api.request('POST', path, { token: tokens.readOrders, body: msg }), 403, 'FORBIDDEN');
      expectHttpError(await api.request('GET', path, { token: tokens.publish }), 403, 'FORBIDDEN');
      expectHttpError(await api.request('GET', `/v1/queues/${queue}`, { token: tokens.listeners }), 403, 'FORBIDDEN');
      expectHttpError(await api.request('DELETE', `/v1/queues/${queue}`, { token: tokens.read }), 403, 'FORBIDDEN');
    }
    // publish:orders publishes to orders only; publish to any queue.
    expect((await api.request('POST', '/v1/queues/orders/messages', { token: tokens.publishOrders, body: msg })).status).toBe(201);
    expectHttpError(await api.request('POST', '/v1/queues/ghost/messages', { token: tokens.publishOrders, body: msg }), 403, 'FORBIDDEN');
    expectHttpError(await api.request('POST', '/v1/queues/ghost/messages', { token: tokens.publish, body: msg }), 404, 'QUEUE_NOT_FOUND');
    // read:orders reads orders, sees only orders in the list, and not the statistics of all queues.
    expect((await api.request('GET', '/v1/queues/orders/messages', { token: tokens.readOrders })).status).toBe(200);
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'other' } });
    expect((await api.request('GET', '/v1/queues', { token: tokens.readOrders })).body.map((q: { name: string }) => q.name)).toEqual(['orders']);
    expect((await api.request('GET', '/v1/queues', { token: tokens.read })).body).toHaveLength(2);
    expectHttpError(await api.request('GET', '/v1/stats', { token: tokens.readOrders }), 403, 'FORBIDDEN');
    expect((await api.request('GET', '/v1/stats', { token: tokens.read })).status).toBe(200);
    expectHttpError(await api.request('GET', '/v1/listeners', { token: tokens.read }), 403, 'FORBIDDEN');
    expect((await api.request('GET', '/v1/listeners', { token: tokens.listeners })).status).toBe(200);
    expectHttpError(await api.request('GET', '/v1/deliveries', { token: tokens.metrics }), 403, 'FORBIDDEN');
    expectHttpError(await api.request('POST', '/v1/queues', { token: tokens.publish, body: { name: 'x' } }), 403, 'FORBIDDEN');
    // Public routes need no token.
    expect((await api.request('GET', '/healthz')).status).toBe(200);
    expect((await api.request('GET', '/openapi.json')).status).toBe(200);
    // A revoked token is refused at once.
    await ok(sb, ['token', 'revoke', 'p2']);
    expectHttpError(await api.request('POST', '/v1/queues/orders/messages', { token: tokens.publish, body: msg }), 401, 'UNAUTHORIZED');
    expectError(await sb.run(['token', 'revoke', 'p2']), 4, 'TOKEN_NOT_FOUND');
    expectError(await sb.run(['token', 'create', '--name', 'p1', '--scope', 'read']), 5, 'TOKEN_EXISTS');
    expectError(await sb.run(['token', 'create', '--name', 'z', '--scope', 'write']), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['token', 'create', '--name', 'z', '--scope', 'admin:orders']), 2, 'INVALID_ARGUMENT');
    // Only hashes are kept, 0600; no token and no secret in the log.
    const file = join(sb.home, 'tokens.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = readFileSync(file, 'utf8');
    const log = sb.log();
    for (const token of [admin, ...Object.values(tokens)]) {
      expect(stored).not.toContain(token);
      expect(log).not.toContain(token);
      expect(log).not.toContain(token.slice(3));
    }
    const listed = JSON.parse(await ok(sb, ['token', 'list', '--json'])) as { name: string; scopes: string[] }[];
    expect(listed.find((x) => x.name === 'p1')).toMatchObject({ scopes: ['publish:orders'] });
    expect(JSON.stringify(listed)).not.toContain('dq_');
  });

  it('SSE: events in order with the message id, heartbeats, and a resume with Last-Event-ID loses nothing', async () => {
    const api = await startApi(sb, { DISCUE_HTTP_TIMEOUT_MS: '1000' });
    const admin = await api.token('admin', 'admin');
    const reader = await api.token('reader', 'read:orders');
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    await api.request('POST', '/v1/queues/orders/messages', { token: admin, body: { data: 'before' } });
    const first = sse(`${api.url}/v1/queues/orders/events`, reader);
    await waitFor(() => first.status === 200, 10_000, 'the stream to open');
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i++) await api.request('POST', '/v1/queues/orders/messages', { token: admin, body: { data: String(i) } });
    };
    await publish(0, 20);
    await waitFor(() => first.events.length === 20, 10_000, '20 events');
    // From now: `before` is not sent.
    expect(first.events.map((e) => e.data.data)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    for (const e of first.events) expect(e.id).toBe(e.data.id);
    // Idle: heartbeats within the idle timeout keep it open.
    await waitFor(() => first.comments >= 2, 10_000, 'heartbeats');
    first.close();
    const last = first.events[first.events.length - 1]!.id;
    // Published while no one is connected.
    await publish(20, 30);
    const second = sse(`${api.url}/v1/queues/orders/events`, reader, last);
    await publish(30, 40);
    await waitFor(() => second.events.length === 20, 10_000, '20 more events');
    expect(second.events.map((e) => e.data.data)).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 20)));
    // Publishers racing the stream's reads: every message once, in stored order.
    await Promise.all(
      Array.from({ length: 10 }, (_, p) =>
        api.request('POST', '/v1/queues/orders/messages', { token: admin, body: Array.from({ length: 10 }, (_, i) => ({ data: `p${p}-${i}` })) }),
      ),
    );
    await waitFor(() => second.events.length === 120, 10_000, '100 racing events');
    const stored: string[] = [];
    let next: string | undefined;
    for (;;) {
      const page = await api.request('GET', `/v1/queues/orders/messages?limit=1000${next ? `&next=${next}` : ''}`, { token: admin });
      if (page.body.messages.length === 0) break;
      stored.push(...page.body.messages.map((m: { id: string }) => m.id));
      next = page.body.next;
    }
    expect(second.events.map((e) => e.id)).toEqual(stored.slice(stored.indexOf(last) + 1));
    second.close();
    // Another queue's token, or none, gets no stream.
    const other = await api.token('other', 'read:other');
    const denied = await api.request('GET', '/v1/queues/orders/events', { token: other });
    expectHttpError(denied, 403, 'FORBIDDEN');
    expectHttpError(await api.request('GET', '/v1/queues/ghost/events', { token: admin }), 404, 'QUEUE_NOT_FOUND');
    // Renamed, its queue is followed; deleted, the stream says so and ends.
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'tmp' } });
    const doomed = sse(`${api.url}/v1/queues/tmp/events`, admin);
    await waitFor(() => doomed.status === 200, 10_000, 'the tmp stream to open');
    await api.request('POST', '/v1/queues/tmp/rename', { token: admin, body: { to: 'tmp2' } });
    await api.request('POST', '/v1/queues/tmp2/messages', { token: admin, body: { data: 'after the rename' } });
    await waitFor(() => doomed.events.length === 1, 10_000, 'the event after the rename');
    expect(doomed.events[0]!.data).toMatchObject({ queue: 'tmp2', data: 'after the rename' });
    await api.request('DELETE', '/v1/queues/tmp2?force=true', { token: admin });
    await waitFor(() => doomed.events.length === 2, 10_000, 'the error event');
    expect(doomed.events[1]).toMatchObject({ event: 'error', data: { error: { code: 'QUEUE_NOT_FOUND' } } });
    doomed.close();
    // Its token revoked, a stream ends at the next heartbeat.
    const revoked = sse(`${api.url}/v1/queues/orders/events`, await api.token('brief', 'read:orders'));
    await waitFor(() => revoked.status === 200, 10_000, 'the stream to open');
    await ok(sb, ['token', 'revoke', 'brief']);
    await waitFor(() => revoked.events.length === 1, 10_000, 'the revocation to end the stream');
    expect(revoked.events[0]).toMatchObject({ event: 'error', data: { error: { code: 'UNAUTHORIZED' } } });
    revoked.close();
    // An open stream does not hold the daemon: `daemon stop` ends it and the daemon exits.
    let ended = false;
    const open = httpRequest(`${api.url}/v1/queues/orders/events`, { headers: { authorization: `Bearer ${reader}` } }, (res) => {
      res.resume();
      res.on('close', () => (ended = true));
    });
    open.on('error', () => (ended = true));
    open.end();
    await waitFor(() => sb.log().length > 0 && open.writableFinished, 5_000, 'the request to be sent');
    const stopped = Date.now();
    await ok(sb, ['daemon', 'stop']);
    await waitFor(() => ended, 5_000, 'the stream to end');
    expect(Date.now() - stopped).toBeLessThan(10_000);
  });

  it('/metrics: Prometheus text with published, stored, deliveries by outcome, latency, pending; metrics scope only', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    const scraper = await api.token('prometheus', 'metrics');
    const hook = await startHookServer(() => ({ status: 204 }));
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    await api.request('POST', '/v1/listeners', { token: admin, body: { kind: 'http', queues: ['orders'], url: hook.url, name: 'hook' } });
    await api.request('POST', '/v1/queues/orders/messages', { token: admin, body: [{ data: 'a' }, { data: 'b' }, { data: 'c' }] });
    await waitFor(() => hook.delivered.length === 3, 20_000, 'three deliveries');
    expectHttpError(await api.request('GET', '/metrics', { token: await api.token('reader', 'read') }), 403, 'FORBIDDEN');
    expectHttpError(await api.request('GET', '/metrics'), 401, 'UNAUTHORIZED');
    const text = await waitFor(async () => {
      const res = await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${scraper}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const body = await res.text();
      return body.includes('discue_deliveries_total{listener="hook",outcome="ok"} 3') ? body : undefined;
    }, 10_000, 'the deliveries to be counted');
    expect(text).toContain('# TYPE discue_messages_published_total counter');
    expect(text).toContain('discue_messages_published_total{queue="orders"} 3');
    expect(text).toContain('discue_queue_messages{queue="orders"} 3');
    expect(text).toContain('discue_listener_pending{listener="hook"} 0');
    expect(text).toContain('discue_delivery_latency_seconds_count 3');
    expect(text).toContain('discue_delivery_attempt_duration_seconds_count{outcome="ok"} 3');
    expect(text).toMatch(/^discue_process_cpu_user_seconds_total \d/m);
  });

  it('CloudEvents: binary and structured publishing; the CloudEvent id makes publishing idempotent', async () => {
    const api = await startApi(sb);
    const t = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: t, body: { name: 'orders' } });
    const binaryHeaders = { 'ce-specversion': '1.0', 'ce-id': 'e1', 'ce-source': '/shop', 'ce-type': 'order.shipped', 'content-type': 'application/json' };
    const binary = await api.request('POST', '/v1/queues/orders/messages', { token: t, raw: '{"order":1001}', headers: binaryHeaders });
    expect(binary.status).toBe(201);
    const repeated = await api.request('POST', '/v1/queues/orders/messages', { token: t, raw: '{"order":1001}', headers: binaryHeaders });
    expect(repeated.body.ids).toEqual(binary.body.ids);
    const structured = await api.request('POST', '/v1/queues/orders/messages', {
      token: t,
      raw: JSON.stringify({ specversion: '1.0', id: 'e2', source: '/shop', type: 'order.paid', datacontenttype: 'application/json', data: { order: 1002 } }),
      headers: { 'content-type': 'application/cloudevents+json' },
    });
    expect(structured.status).toBe(201);
    const text = await api.request('POST', '/v1/queues/orders/messages', {
      token: t,
      raw: JSON.stringify({ specversion: '1.0', id: 'e3', source: '/shop', type: 'note', data: 'plain text' }),
      headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
    });
    expect(text.status).toBe(201);
    const page = await api.request('GET', '/v1/queues/orders/messages', { token: t });
    expect(page.body.messages.map((m: { name: string; data: string }) => [m.name, m.data])).toEqual([
      ['order.shipped', '{"order":1001}'],
      ['order.paid', '{"order":1002}'],
      ['note', 'plain text'],
    ]);
    const missing = await api.request('POST', '/v1/queues/orders/messages', {
      token: t,
      raw: JSON.stringify({ specversion: '1.0', source: '/shop', type: 'x', data: 'y' }),
      headers: { 'content-type': 'application/cloudevents+json' },
    });
    expectHttpError(missing, 400, 'INVALID_MESSAGE');
    expectHttpError(
      await api.request('POST', '/v1/queues/orders/messages', { token: t, raw: 'x', headers: { ...binaryHeaders, 'ce-specversion': '0.3' } }),
      400,
      'INVALID_MESSAGE',
    );
  });

  it('listener add --cloudevents: each request is a CloudEvent in binary mode and a signed Standard Webhook at once', async () => {
    const hook = await startHookServer(() => ({ status: 204 }));
    await ok(sb, ['queue', 'create', 'orders']);
    const added = JSON.parse(await ok(sb, ['listener', 'add', '--queue', 'orders', '--url', hook.url, '--cloudevents', '--json'])) as { secret: string; cloudevents: boolean };
    expect(added.cloudevents).toBe(true);
    await ok(sb, ['publish', 'orders', '--data', '{"order":1001}', '--name', 'order.shipped']);
    await ok(sb, ['publish', 'orders', '--data', 'plain']);
    await waitFor(() => hook.delivered.length === 2, 20_000, 'two deliveries');
    for (const [i, received] of hook.delivered.entries()) {
      const h = received.headers;
      // Standard Webhooks: the signature verifies over the body as sent.
      expect(verifyWebhook(added.secret, h, received.body)).toBe(true);
      // CloudEvents 1.0 HTTP binary mode: required attributes as ce-* headers, the body is the data.
      expect(h['ce-specversion']).toBe('1.0');
      expect(h['ce-id']).toBe(received.envelope.id);
      expect(h['ce-id']).toBe(h['webhook-id']);
      expect(h['ce-source']).toBe('/discue/queues/orders');
      expect(() => new URL(h['ce-source'] as string, 'http://base.invalid')).not.toThrow();
      expect(h['ce-type']).toBe(i === 0 ? 'order.shipped' : 'discue.message');
      expect(h['ce-time']).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
      expect(Date.parse(h['ce-time'] as string)).toBe(Date.parse(received.envelope.publishedAt));
      expect(h['content-type']).toBe('application/json');
      expect(JSON.parse(received.body)).toEqual(received.envelope);
    }
    expectError(await sb.run(['listener', 'add', '--queue', 'orders', '--exec', 'true', '--cloudevents']), 2, 'USAGE');
  });

  it('/openapi.json is OpenAPI 3.1 whose schemas compile, and documents exactly the routes that answer and the README lists', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    const doc = (await api.request('GET', '/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    // Against the OpenAPI 3.1 schema itself, by an independent validator.
    const validator = new Validator();
    const verdict = await validator.validate(structuredClone(doc));
    expect(verdict, JSON.stringify(verdict.errors)).toEqual({ valid: true });
    expect(validator.version).toBe('3.1');
    expect(doc.info.title).toBeTypeOf('string');
    const ajv = new Ajv2020({ strict: false });
    const operations: [string, string][] = [];
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      expect(path).toMatch(/^\//);
      for (const [method, op] of Object.entries(methods)) {
        expect(['get', 'post', 'patch', 'delete']).toContain(method);
        operations.push([method.toUpperCase(), path]);
        expect(op.responses).toBeTypeOf('object');
        for (const response of Object.values(op.responses as Record<string, any>)) {
          for (const media of Object.values(response.content ?? {}) as { schema: any }[]) {
            if (!media.schema.$ref) ajv.compile(media.schema);
          }
        }
        for (const media of Object.values(op.requestBody?.content ?? {}) as { schema: any }[]) ajv.compile(media.schema);
        for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])) {
          expect(op.parameters.some((p: { name: string; in: string }) => p.name === name && p.in === 'path'), `${method} ${path} {${name}}`).toBe(true);
        }
      }
    }
    ajv.compile(doc.components.schemas.Error);
    // The README's route table names the same operations as the document.
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## HTTP API\n'), readme.indexOf('\n## ', readme.indexOf('\n## HTTP API\n') + 1));
    const documented = [...section.matchAll(/^\| `(GET|POST|PATCH|DELETE) (\/[^`]*)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(documented.sort()).toEqual(operations.map(([m, p]) => `${m} ${p}`).sort());
    // Every documented operation answers (whatever the answer, it is not "no such route"),
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'q' } });
    for (const [method, path] of operations) {
      if (path.endsWith('/events')) continue; // a stream; answered in the SSE test
      const concrete = path.replace('{queue}', 'q').replace('{id}', '01M8QGQNZ20H7136E9YRHVSBR0').replace('{listener}', 'l');
      const res = await api.request(method, concrete, { token: admin, ...(method === 'GET' || method === 'DELETE' ? {} : { body: {} }) });
      expect(res.body?.error?.code, `${method} ${concrete}`).not.toBe('ROUTE_NOT_FOUND');
      expect(res.body?.error?.code, `${method} ${concrete}`).not.toBe('METHOD_NOT_ALLOWED');
    }
    // and paths not documented do not,
    for (const path of ['/v1', '/v1/queue', '/v1/tokens', '/v1/queues/q/messages/x/y']) {
      expectHttpError(await api.request('GET', path, { token: admin }), 404, 'ROUTE_NOT_FOUND');
    }
    // nor methods a documented path does not take: 405, with what it takes.
    for (const [method, path] of [['PUT', '/v1/queues/q'], ['POST', '/v1/stats'], ['DELETE', '/v1/queues/q/messages']]) {
      const res = await api.request(method!, path!, { token: admin });
      expectHttpError(res, 405, 'METHOD_NOT_ALLOWED');
      expect(res.headers.get('allow'), `${method} ${path}`).toMatch(/, OPTIONS$/);
      expect(res.headers.get('allow'), `${method} ${path}`).not.toContain(method);
    }
  });

  it('refuses a non-loopback address without TLS, unless --http-insecure', async () => {
    const refused = await sb.run(['daemon', 'start', '--http', '0.0.0.0:0']);
    expectError(refused, 2, 'INVALID_ARGUMENT');
    expect(refused.stderr).toContain('TLS');
    expect(sb.daemonPid()).toBeUndefined();
    // The config key and its variable go the same way.
    expectError(await sb.run(['daemon', 'start'], { env: { DISCUE_HTTP_LISTEN: '0.0.0.0:0' } }), 2, 'INVALID_ARGUMENT');
    expectError(await sb.run(['daemon', 'start', '--http', 'nonsense']), 2, 'INVALID_ARGUMENT');
    await ok(sb, ['daemon', 'start', '--http', '0.0.0.0:0', '--http-insecure']);
    const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { http: string };
    expect(status.http).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    const res = await fetch(status.http.replace('0.0.0.0', '127.0.0.1') + '/healthz');
    expect(res.status).toBe(200);
  });

  it('with http.tlsCert and http.tlsKey it speaks HTTPS, and may listen beyond loopback', async () => {
    const cert = join(sb.dir, 'cert.pem');
    const key = join(sb.dir, 'key.pem');
    await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
    await ok(sb, ['config', 'set', 'http.tlsCert', cert]);
    await ok(sb, ['config', 'set', 'http.tlsKey', key]);
    await ok(sb, ['daemon', 'start', '--http', '0.0.0.0:0']);
    const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { http: string };
    expect(status.http).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
    expect(await ok(sb, ['daemon', 'status'])).toMatch(/^http:\s+https:\/\//m);
    const port = Number(new URL(status.http).port);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca: readFileSync(cert) }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += String(d)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer).toEqual({ status: 200, body: '{"ok":true}' });
    // Plain HTTP on the TLS port is not served.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status)).rejects.toThrow();
    // Only one of the two is a usage error, before any daemon starts.
    await ok(sb, ['daemon', 'stop']);
    await ok(sb, ['config', 'set', 'http.tlsKey', 'none']);
    expectError(await sb.run(['daemon', 'start', '--http', '127.0.0.1:0']), 2, 'INVALID_ARGUMENT');
    // A key that cannot be read: the daemon does not start, and says why.
    await ok(sb, ['config', 'set', 'http.tlsKey', join(sb.dir, 'missing.pem')]);
    const unreadable = await sb.run(['daemon', 'start', '--http', '127.0.0.1:0']);
    expect(unreadable.code).not.toBe(0);
    expect(unreadable.stderr).toContain('cannot read http.tlsKey');
    // A port in use is named as such.
    await ok(sb, ['config', 'set', 'http.tlsKey', 'none']);
    await ok(sb, ['config', 'set', 'http.tlsCert', 'none']);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const taken = await sb.run(['daemon', 'start', '--http', `127.0.0.1:${(holder.address() as AddressInfo).port}`]);
      expect(taken.code).not.toBe(0);
      expect(taken.stderr).toContain('EADDRINUSE');
    } finally {
      holder.close();
    }
  });

  it('off by default: no port, and http.listen in the config turns it on for an auto-started daemon', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    expect(JSON.parse(await ok(sb, ['daemon', 'status', '--json'])).http).toBeUndefined();
    await ok(sb, ['daemon', 'stop']);
    await ok(sb, ['config', 'set', 'http.listen', '127.0.0.1:0']);
    await ok(sb, ['queue', 'list']);
    expect(JSON.parse(await ok(sb, ['daemon', 'status', '--json'])).http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('a body over the limit is refused with 413; a slowloris client is cut off while others are served', async () => {
    const api = await startApi(sb, { DISCUE_HTTP_TIMEOUT_MS: '1000' });
    const t = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: t, body: { name: 'orders' } });
    const huge = await api.request('POST', '/v1/queues/orders/messages', { token: t, raw: 'x'.repeat(17 * 1024 * 1024), headers: { 'content-type': 'application/json' } });
    expectHttpError(huge, 413, 'MESSAGE_TOO_LARGE');
    const { port } = new URL(api.url);
    const slow = connect(Number(port), '127.0.0.1');
    let closedAt = 0;
    slow.on('close', () => (closedAt = Date.now()));
    slow.on('error', () => undefined);
    let answer = '';
    slow.on('data', (d: Buffer) => (answer += String(d)));
    await new Promise((resolve) => slow.once('connect', resolve));
    const startedAt = Date.now();
    slow.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // One header byte every 100 ms: headers that never finish.
    const drip = setInterval(() => slow.writable && slow.write('X'), 100);
    try {
      // Meanwhile, others are served.
      for (let i = 0; i < 5; i++) expect((await api.request('GET', '/healthz')).status).toBe(200);
      await waitFor(() => closedAt > 0, 15_000, 'the slow client to be cut off');
      expect(closedAt - startedAt).toBeGreaterThanOrEqual(900);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
      slow.destroy();
    }
    expect((await api.request('GET', '/healthz')).status).toBe(200);
  });
});
