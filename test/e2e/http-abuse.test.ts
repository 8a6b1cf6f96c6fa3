/**
 * The HTTP API against hostile and careless clients, through real HTTP on
 * 127.0.0.1 against the real daemon started by the CLI: malformed paths, a
 * scoped token on a stream whose queue is renamed away, a client that stops
 * reading a stream, a damaged tokens.json.
 */
import { Agent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import { ok } from '../helpers/discue.js';
import { expectHttpError, startApi } from '../helpers/http.js';

const sb = useSandbox('dq-abuse-');

/** Sends raw bytes on a fresh connection; resolves with everything the server sent before closing or going quiet. */
function raw(url: string, text: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    let quiet: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(quiet);
      socket.destroy();
      resolve(answer);
    };
    socket.on('data', (d: Buffer) => {
      answer += String(d);
      // A whole answer has arrived once its declared body is in.
      const head = answer.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(answer);
      if (head >= 0 && (!length || Buffer.byteLength(answer) - head - 4 >= Number(length[1]))) {
        clearTimeout(quiet);
        quiet = setTimeout(done, 50);
      }
    });
    socket.on('close', done);
    socket.on('error', done);
    socket.write(text);
  });
}

const ESTABLISHED = '01';

/** The TCP state (as /proc/net/tcp writes it) of the daemon's end of the connection from clientPort, or undefined once it is gone. */
function serverSideState(serverPort: number, clientPort: number): string | undefined {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (local?.endsWith(`:${hex(serverPort)}`) && remote?.endsWith(`:${hex(clientPort)}`)) return state;
  }
  return undefined;
}

function jsonOf(answer: string): any {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
}

describe('HTTP API under abuse', () => {
  it('a malformed percent-encoding in the path is a 400 with the error body, not a 500', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    const res = await api.request('GET', '/v1/queues/%E0%A4%A/messages', { token: admin });
    expectHttpError(res, 400, 'INVALID_ARGUMENT');
    expect(sb.log()).not.toContain('http request failed');
  });

  it('a path starting with // is routed as it is written, not read as a host and the rest', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    // WHATWG URL reads `//x/v1/queues` as host x, path /v1/queues.
    const answer = await raw(api.url, `GET //x/v1/queues HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${admin}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
    expect(jsonOf(answer).error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('a read:QUEUE stream ends with FORBIDDEN when its queue is renamed to a name the token does not cover', async () => {
    const api = await startApi(sb, { DISCUE_HTTP_TIMEOUT_MS: '1000' });
    const admin = await api.token('admin', 'admin');
    const reader = await api.token('reader', 'read:orders');
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    const events: { event: string; data: string }[] = [];
    let status = 0;
    let ended = false;
    const req = httpRequest(`${api.url}/v1/queues/orders/events`, { headers: { authorization: `Bearer ${reader}` } }, (res) => {
      status = res.statusCode ?? 0;
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data });
        }
      });
      res.on('close', () => (ended = true));
    });
    req.on('error', () => (ended = true));
    req.end();
    try {
      await waitFor(() => status === 200, 10_000, 'the stream to open');
      await api.request('POST', '/v1/queues/orders/rename', { token: admin, body: { to: 'private' } });
      await api.request('POST', '/v1/queues/private/messages', { token: admin, body: { data: 'not for read:orders' } });
      // The token cannot read `private` by its name: neither may its stream.
      expectHttpError(await api.request('GET', '/v1/queues/private/messages', { token: reader }), 403, 'FORBIDDEN');
      await waitFor(() => ended, 10_000, 'the stream to end');
      expect(events.map((e) => e.data).join('\n')).not.toContain('not for read:orders');
      expect(events).toHaveLength(1);
      expect(events[0]!.event).toBe('error');
      expect(JSON.parse(events[0]!.data)).toMatchObject({ error: { code: 'FORBIDDEN' } });
    } finally {
      req.destroy();
    }
  });

  it('a stream whose client stops reading is cut off after the timeout, and leaks no listeners meanwhile', async () => {
    const api = await startApi(sb, { DISCUE_HTTP_TIMEOUT_MS: '1000' });
    const admin = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    let status = 0;
    let clientPort = 0;
    const req = httpRequest(`${api.url}/v1/queues/orders/events`, { headers: { authorization: `Bearer ${admin}` } }, (res) => {
      status = res.statusCode ?? 0;
      clientPort = res.socket.localPort ?? 0;
      // Never read: the server's writes back up until the socket buffers are full.
      res.pause();
    });
    req.on('error', () => undefined);
    req.end();
    try {
      await waitFor(() => status === 200, 10_000, 'the stream to open');
      const serverPort = Number(new URL(api.url).port);
      // Found, and open while its client is merely idle.
      expect(serverSideState(serverPort, clientPort)).toBe(ESTABLISHED);
      const big = 'x'.repeat(200 * 1024);
      // ~12 MB: well past what loopback socket buffers hold.
      for (let i = 0; i < 60; i++) await api.request('POST', '/v1/queues/orders/messages', { token: admin, body: { data: big } });
      const published = Date.now();
      // The client, not reading, cannot see the close (the FIN waits behind the data it does
      // not take): the daemon's side of the connection is looked at instead.
      await waitFor(() => serverSideState(serverPort, clientPort) !== ESTABLISHED, 15_000, 'the stalled stream to be cut off');
      expect(Date.now() - published).toBeLessThan(10_000);
      // Other clients are served meanwhile and after.
      expect((await api.request('GET', '/healthz')).status).toBe(200);
      expect(sb.log()).not.toContain('MaxListenersExceededWarning');
    } finally {
      req.destroy();
    }
  });

  it('a damaged tokens.json does not stop the daemon: the socket works, the HTTP API refuses every token, token commands say what to fix', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    await ok(sb, ['daemon', 'stop']);
    const file = join(sb.home, 'tokens.json');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.slice(0, 20), { mode: 0o600 });
    const restarted = await startApi(sb);
    // The admin channel is unaffected.
    await ok(sb, ['queue', 'create', 'orders']);
    expectHttpError(await restarted.request('GET', '/v1/queues', { token: admin }), 500, 'STORAGE_DAMAGED');
    expect((await restarted.request('GET', '/healthz')).status).toBe(200);
    const list = await sb.run(['token', 'list']);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain('[STORAGE_DAMAGED]');
    expect(list.stderr).toContain('tokens.json');
    // Creating a token must not overwrite the damaged file (the user may still repair it).
    expect((await sb.run(['token', 'create', '--name', 'x', '--scope', 'admin'])).code).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe(good.slice(0, 20));
    expect(sb.log()).toContain('tokens.json');
    // A record whose hash is not a SHA-256 (a careless edit) spoils only itself.
    await ok(sb, ['daemon', 'stop']);
    const parsed = JSON.parse(good) as { tokens: { hash: string; scopes: unknown }[] };
    parsed.tokens.push({ ...parsed.tokens[0]!, hash: 'abc', scopes: ['admin'] });
    writeFileSync(file, JSON.stringify(parsed), { mode: 0o600 });
    const again = await startApi(sb);
    expect((await again.request('GET', '/v1/queues', { token: admin })).status).toBe(200);
    expectHttpError(await again.request('GET', '/v1/queues', { token: 'dq_nope' }), 401, 'UNAUTHORIZED');
  });

  it('CloudEvents: distinct (source, id) pairs are never taken for one another, and data that is not UTF-8 text is refused, not mangled', async () => {
    const api = await startApi(sb);
    const t = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: t, body: { name: 'orders' } });
    const structured = (event: Record<string, unknown>) =>
      api.request('POST', '/v1/queues/orders/messages', {
        token: t,
        raw: JSON.stringify({ specversion: '1.0', type: 't', ...event }),
        headers: { 'content-type': 'application/cloudevents+json' },
      });
    // ("a b", "c") and ("a", "b c") are two events: both stored.
    const first = await structured({ source: 'a b', id: 'c', data: 'first' });
    const second = await structured({ source: 'a', id: 'b c', data: 'second' });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body.ids).not.toEqual(first.body.ids);
    // Any string is an id: long or not ASCII, it is still a CloudEvent.
    expect((await structured({ source: '/shop', id: 'é'.repeat(300), data: 'x' })).status).toBe(201);
    // Sent twice, stored once, as before.
    expect((await structured({ source: 'a', id: 'b c', data: 'second' })).body.ids).toEqual(second.body.ids);
    expectHttpError(await structured({ source: 's', id: '1', data_base64: '!!!' }), 400, 'INVALID_MESSAGE');
    expectHttpError(await structured({ source: 's', id: '2', data_base64: Buffer.from([0xff, 0xfe]).toString('base64') }), 400, 'INVALID_MESSAGE');
    expect((await structured({ source: 's', id: '3', data_base64: Buffer.from('héllo').toString('base64') })).status).toBe(201);
    const binary = await fetch(`${api.url}/v1/queues/orders/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t}`, 'ce-specversion': '1.0', 'ce-id': '4', 'ce-source': 's', 'ce-type': 't', 'content-type': 'application/octet-stream' },
      body: new Uint8Array([0xff, 0xfe, 0x00]),
    });
    expectHttpError({ status: binary.status, body: await binary.json() }, 400, 'INVALID_MESSAGE');
    const page = await api.request('GET', '/v1/queues/orders/messages', { token: t });
    expect(page.body.messages.map((m: { data: string }) => m.data)).toEqual(['first', 'second', 'x', 'héllo']);
  });

  it('requests Node refuses before routing (too many or too large headers, garbage, too slow) still get the error body', async () => {
    const api = await startApi(sb, { DISCUE_HTTP_TIMEOUT_MS: '1000' });
    const big = await raw(api.url, `GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(jsonOf(big).error.code).toBe('HEADERS_TOO_LARGE');
    const many = await raw(api.url, `GET /healthz HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: 1\r\n`).join('')}\r\n`);
    expect(many).toMatch(/^HTTP\/1\.1 431 /);
    expect(jsonOf(many).error.code).toBe('HEADERS_TOO_LARGE');
    const garbage = await raw(api.url, 'NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(jsonOf(garbage).error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const slow = await raw(api.url, 'GET /healthz HTTP/1.1\r\nHost: a\r\n');
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(jsonOf(slow).error.code).toBe('REQUEST_TIMEOUT');
    expect(typeof jsonOf(slow).error.message).toBe('string');
    expect((await api.request('GET', '/healthz')).status).toBe(200);
  });

  it('publish ?wait=true with a waitTimeoutMs past 2^31 ms waits, rather than timing out at once', async () => {
    const api = await startApi(sb);
    const admin = await api.token('admin', 'admin');
    await api.request('POST', '/v1/queues', { token: admin, body: { name: 'orders' } });
    // A webhook that never answers: the delivery stays in flight (listener timeout 30 s).
    const hook = createHttpServer(() => undefined);
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    sb.onDispose(() => new Promise((resolve) => hook.close(resolve)).then(() => hook.closeAllConnections()));
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`;
    expect((await api.request('POST', '/v1/listeners', { token: admin, body: { kind: 'http', queues: ['orders'], url } })).status).toBe(201);
    const answered = fetch(`${api.url}/v1/queues/orders/messages?wait=true&waitTimeoutMs=3000000000`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ data: 'x' }),
      signal: AbortSignal.timeout(2000),
    }).then(
      (res) => `answered ${res.status}`,
      (err: Error) => err.name,
    );
    // Node's timers overflow past 2^31-1 ms and fire after 1 ms: the wait must not end before our 2 s.
    expect(await answered).toBe('TimeoutError');
    expect(sb.log()).not.toContain('TimeoutOverflowWarning');
  });

  it('event streams are capped below the connection limit: one token cannot lock every other client out', async () => {
    const api = await startApi(sb);
    const reader = await api.token('reader', 'read:orders');
    await ok(sb, ['queue', 'create', 'orders']);
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const streams: ClientRequest[] = [];
    let open = 0;
    const openStream = () =>
      new Promise<number>((resolve) => {
        const req = httpRequest(`${api.url}/v1/queues/orders/events`, { agent, headers: { authorization: `Bearer ${reader}` } }, (res) => {
          if (res.statusCode === 200) open++;
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(0));
        req.end();
        streams.push(req);
      });
    try {
      const statuses = await Promise.all(Array.from({ length: 600 }, openStream));
      expect(statuses.filter((s) => s === 200)).toHaveLength(512);
      expect(statuses.filter((s) => s === 429)).toHaveLength(88);
      expect(open).toBe(512);
      // Ordinary requests are still served.
      expect((await api.request('GET', '/healthz')).status).toBe(200);
      expectHttpError(await api.request('GET', '/v1/queues/orders/events', { token: reader }), 429, 'BUSY');
      // A stream that ends makes room for another.
      streams.find((r) => !r.destroyed)!.destroy();
      await waitFor(async () => (await openStream()) === 200, 10_000, 'a free stream slot');
    } finally {
      for (const req of streams) req.destroy();
    }
  });
});
