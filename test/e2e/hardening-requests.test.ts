/**
 * The daemon must never die from a request. A generated table sends every
 * request type with every parameter it reads replaced by every wrong-typed
 * value, over a raw socket after a valid hello: each frame gets a reply (an
 * error with a stable code other than INTERNAL, or a success), and the daemon
 * is the same process, still answering, at the end.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import type { RequestType } from '../../src/protocol/requests.js';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { isRunning, ok, statusPid } from '../helpers/discue.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';

type Frame = Record<string, unknown>;

/** Nested `depth` levels deep: {"a":{"a":...}} or [[...]]. */
function nestedObject(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}
function nestedArray(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** Values of every JSON type and the edges of each: none is right for every parameter, most are wrong for each. */
const WRONG_VALUES: [string, unknown][] = [
  ['string', 'x'],
  ['empty string', ''],
  ['number', 7],
  ['zero', 0],
  ['negative', -1],
  ['fraction', 1.5],
  ['huge number', 1e308],
  ['unsafe integer', 2 ** 53 + 2],
  ['true', true],
  ['false', false],
  ['empty array', []],
  ['mixed array', [1, 'a', null, {}]],
  ['empty object', {}],
  ['nested object', { a: { b: { c: [1, { d: 'e' }] } } }],
  ['deeply nested object', nestedObject(3000)],
  ['deeply nested array', nestedArray(3000)],
  ['null', null],
  ['NaN-ish string', 'NaN'],
  ['Infinity-ish string', '1e999'],
  ['minus zero string', '-0'],
  ['very long string', 'a'.repeat(300_000)],
  ['NUL string', '\u0000'],
  ['prototype key', { __proto__: { polluted: true }, constructor: 'x' }],
];

/** What a request whose params are not an object at all might carry. */
const WRONG_PARAMS: [string, unknown][] = WRONG_VALUES.filter(
  ([, v]) => v !== null && (typeof v !== 'object' || Array.isArray(v)),
);

interface Variant {
  /** Valid params, so that each parameter under test is actually reached. */
  base: Record<string, unknown>;
  /** Every parameter the handler reads, as dotted paths into base. */
  keys: string[];
}

/**
 * Typed over RequestType: a request type added to the protocol without a row
 * here fails the type check of the tests.
 */
function table(messageId: string): Record<RequestType, Variant[]> {
  return {
    hello: [{ base: { protocol: 1, version: 'test' }, keys: ['protocol', 'version'] }],
    'daemon.status': [{ base: {}, keys: [] }],
    stats: [{ base: { recent: 5 }, keys: ['recent'] }],
    // Only ever sent with wrong params: a right one would stop the daemon under test.
    'daemon.shutdown': [],
    'queue.create': [{ base: { name: 'made' }, keys: ['name', 'schema', 'retentionMs', 'maxMessages'] }],
    'queue.list': [{ base: {}, keys: [] }],
    'queue.get': [{ base: { name: 'q' }, keys: ['name'] }],
    'queue.update': [{ base: { name: 'upd' }, keys: ['name', 'schema', 'retentionMs', 'maxMessages'] }],
    'queue.delete': [{ base: { name: 'del' }, keys: ['name', 'force'] }],
    'queue.purge': [{ base: { name: 'purged' }, keys: ['name'] }],
    // 'ren2' exists: even a value that happens to be a valid name renames nothing.
    'queue.rename': [{ base: { name: 'ren', to: 'ren2' }, keys: ['name', 'to'] }],
    publish: [
      {
        base: { queue: 'q', messages: [{ data: 'x', name: 'n' }] },
        keys: ['queue', 'messages', 'messages.0', 'messages.0.data', 'messages.0.name', 'wait', 'waitTimeoutMs'],
      },
    ],
    'publish.many': [
      {
        base: { publishes: [{ queue: 'q', messages: [{ data: 'x', name: 'n' }] }, { queue: 'q', messages: [{ data: 'y', key: 'k' }] }] },
        keys: [
          'publishes',
          'publishes.0',
          'publishes.0.queue',
          'publishes.0.messages',
          'publishes.0.messages.0',
          'publishes.0.messages.0.data',
          'publishes.0.messages.0.name',
          'publishes.0.wait',
          'publishes.1.messages.0.key',
        ],
      },
    ],
    'listener.add': [
      {
        base: { kind: 'exec', queues: ['lq'], command: 'true' },
        keys: [
          'kind',
          'queues',
          'queues.0',
          'name',
          'command',
          'shell',
          'cwd',
          'timeoutMs',
          'maxAttempts',
          'retryDelayMs',
          'concurrency',
          'from',
          'filters',
          'filters.0',
          'rate',
          'anyHost',
          'afterIds',
          'paused',
        ],
      },
      {
        base: { kind: 'http', queues: ['lq'], url: 'http://127.0.0.1:9/', headers: { 'X-A': 'b' }, filters: ['a.*'] },
        keys: ['url', 'headers', 'headers.X-A', 'secret', 'cloudevents', 'livenessUrl', 'filters.0'],
      },
    ],
    'listener.list': [{ base: { queue: 'lq' }, keys: ['queue'] }],
    'listener.get': [{ base: { ref: 'fixed' }, keys: ['ref', 'secret'] }],
    'listener.remove': [{ base: { ref: 'gone' }, keys: ['ref'] }],
    'listener.pause': [{ base: { ref: 'fixed' }, keys: ['ref'] }],
    'listener.resume': [{ base: { ref: 'fixed' }, keys: ['ref'] }],
    'listener.update': [{ base: { ref: 'fixed', filters: ['a.>'], rate: '5/s' }, keys: ['ref', 'filters', 'filters.0', 'rate', 'livenessUrl'] }],
    'listener.replay': [
      { base: { ref: 'fixed', sinceMs: 0, dryRun: true }, keys: ['ref', 'sinceMs', 'dryRun'] },
      { base: { ref: 'fixed', messageId, dryRun: true }, keys: ['messageId'] },
    ],
    'deliveries.list': [{ base: {}, keys: ['listener', 'state', 'limit'] }],
    'deliveries.retry': [{ base: { allDead: true }, keys: ['id', 'allDead', 'listener'] }],
    listen: [{ base: { queues: ['lq'] }, keys: ['queues', 'queues.0', 'name', 'from', 'prefetch', 'sinceMs', 'filters'] }],
    'listen.ack': [{ base: { stream: 1, tag: 1 }, keys: ['stream', 'tag'] }],
    'messages.list': [{ base: { queue: 'q' }, keys: ['queue', 'afterId', 'sinceMs', 'limit'] }],
    'messages.page': [{ base: { queue: 'q' }, keys: ['queue', 'afterId', 'sinceMs', 'next', 'limit'] }],
    'messages.import': [
      {
        base: { queue: 'q', messages: [{ id: messageId, data: 'x', name: 'n', publishedAt: '2026-01-01T00:00:00.000Z' }] },
        keys: ['queue', 'messages', 'messages.0', 'messages.0.id', 'messages.0.data', 'messages.0.name', 'messages.0.publishedAt'],
      },
    ],
    'messages.get': [{ base: { queue: 'q', id: messageId }, keys: ['queue', 'id'] }],
    'messages.delete': [{ base: { queue: 'q', id: messageId }, keys: ['queue', 'id'] }],
    'token.create': [{ base: { name: 'tok', scopes: ['read'] }, keys: ['name', 'scopes', 'scopes.0'] }],
    'token.list': [{ base: {}, keys: [] }],
    'token.revoke': [{ base: { name: 'gone' }, keys: ['name'] }],
  };
}

/** A deep copy of `base` with the value at `path` replaced. */
function withValue(base: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(base);
  const parts = path.split('.');
  let at: Record<string, unknown> = copy;
  for (const part of parts.slice(0, -1)) {
    at[part] ??= {};
    at = at[part] as Record<string, unknown>;
  }
  at[parts[parts.length - 1]!] = value;
  return copy;
}

interface Case {
  label: string;
  type: RequestType;
  params: unknown;
}

function generate(messageId: string): Case[] {
  const cases: Case[] = [];
  for (const [type, variants] of Object.entries(table(messageId)) as [RequestType, Variant[]][]) {
    for (const [what, params] of WRONG_PARAMS) cases.push({ label: `${type} with params = ${what}`, type, params });
    for (const { base, keys } of variants) {
      for (const key of keys) {
        for (const [what, value] of WRONG_VALUES) {
          cases.push({ label: `${type} with ${key} = ${what}`, type, params: withValue(base, key, value) });
        }
      }
    }
  }
  return cases;
}

/**
 * A raw connection that parses what arrives as it arrives (thousands of
 * frames: the shared RawClient re-parses everything on each look).
 */
class Wire {
  private text = '';
  private readonly byId = new Map<number, Frame[]>();
  private readonly waiters = new Map<number, (frame: Frame) => void>();
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.text += d;
      let nl = this.text.indexOf('\n');
      while (nl !== -1) {
        const frame = JSON.parse(this.text.slice(0, nl)) as Frame;
        this.text = this.text.slice(nl + 1);
        const list = this.byId.get(frame.id as number) ?? [];
        list.push(frame);
        this.byId.set(frame.id as number, list);
        if ('ok' in frame) this.waiters.get(frame.id as number)?.(frame);
        nl = this.text.indexOf('\n');
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static connect(path: string): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      socket.once('connect', () => resolve(new Wire(socket)));
      socket.once('error', reject);
    });
  }

  static async greeted(path: string): Promise<Wire> {
    const wire = await Wire.connect(path);
    wire.send({ id: 1, type: 'hello', params: { protocol: 1, version: 'test' } });
    expect((await wire.reply(1)).ok).toBe(true);
    return wire;
  }

  send(frame: unknown): void {
    this.socket.write(JSON.stringify(frame) + '\n');
  }

  /** The reply (not an event) with this id, if it came. */
  replied(id: number): Frame | undefined {
    return this.byId.get(id)?.find((f) => 'ok' in f);
  }

  events(id: number): Frame[] {
    return (this.byId.get(id) ?? []).filter((f) => 'event' in f);
  }

  /** Waits for the reply with this id (by event: thousands of polls would take minutes). */
  reply(id: number): Promise<Frame> {
    const there = this.replied(id);
    if (there) return Promise.resolve(there);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to frame ${id} in 20 s`)), 20_000);
      this.waiters.set(id, (frame) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(frame);
      });
    });
  }

  /** Forgets the frames of this id, so it can be reused. */
  forget(id: number): void {
    this.byId.delete(id);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const STABLE_CODES = new Set(Object.keys(ERROR_CODES).filter((code) => code !== 'INTERNAL'));

describe('the daemon never dies from a request', () => {
  const sb = useSandbox();


  it('answers every request type with every wrong-typed parameter, and stays the same process', async () => {
    for (const queue of ['q', 'lq', 'upd', 'del', 'purged', 'ren', 'ren2']) await ok(sb, ['queue', 'create', queue]);
    const messageId = (await ok(sb, ['publish', 'q', '--data', 'kept'])).trim();
    await ok(sb, ['listener', 'add', '--queue', 'lq', '--exec', 'true', '--name', 'fixed']);
    await ok(sb, ['listener', 'add', '--queue', 'lq', '--exec', 'true', '--name', 'gone']);
    const pid = await statusPid(sb);

    const cases = generate(messageId);
    expect(cases.length).toBeGreaterThan(1500);
    const raw = await Wire.greeted(sb.socket);
    const failures: string[] = [];
    let id = 10;
    for (const c of cases) {
      const caseId = ++id;
      const pingId = ++id;
      raw.send({ id: caseId, type: c.type, params: c.params });
      if (c.type !== 'listen' && c.type !== 'listen.ack') await raw.reply(caseId);
      // The ping's reply proves the daemon is still answering, and that it
      // read the case before it (a stream or an ack has no reply of its own).
      raw.send({ id: pingId, type: 'daemon.status', params: {} });
      const ping = await raw.reply(pingId);
      expect(ping.ok, `${c.label}: the daemon stopped answering`).toBe(true);
      const reply = raw.replied(caseId);
      raw.forget(caseId);
      raw.forget(pingId);
      if (reply === undefined) {
        // Only a stream that opened, or an ack shaped like one, has no reply.
        if (c.type !== 'listen' && c.type !== 'listen.ack') failures.push(`${c.label}: no reply`);
        continue;
      }
      if (reply.ok === true) continue;
      const code = (reply.error as { code?: unknown } | undefined)?.code;
      if (typeof code !== 'string' || !STABLE_CODES.has(code)) {
        failures.push(`${c.label}: ${JSON.stringify(reply.error).slice(0, 300)}`);
      }
    }
    expect(failures).toEqual([]);

    // Nesting far deeper than JSON.stringify (ours, or the daemon's) can recurse, written by hand.
    const deep = `${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}`;
    const deepFrames = [
      `{"id":${++id},"type":"queue.create","params":{"name":"deep","schema":${deep}}}`,
      `{"id":${++id},"type":"publish","params":{"queue":"q","messages":[{"data":"x","name":${deep}}]}}`,
      `{"id":${++id},"type":"listener.add","params":${deep}}`,
    ];
    for (const [i, line] of deepFrames.entries()) {
      raw.socket.write(line + '\n');
      const reply = await raw.reply(id - deepFrames.length + 1 + i);
      expect(reply).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    }
    expect(raw.closed).toBe(false);
    raw.destroy();

    // Last: shutdown with params that are not an object is refused like any other request.
    const last = await Wire.greeted(sb.socket);
    for (const [what, params] of WRONG_PARAMS) {
      last.send({ id: 2, type: 'daemon.shutdown', params });
      const reply = await last.reply(2);
      expect(reply, what).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
      last.forget(2);
    }
    last.destroy();

    expect(isRunning(pid)).toBe(true);
    expect(await statusPid(sb)).toBe(pid);
    expect(sb.log()).not.toContain('request failed');
  }, 120_000);

  it('refuses a hello whose params are not an object, on each connection, and lives', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const pid = await statusPid(sb);
    const shapes: [string, unknown][] = [
      ...WRONG_PARAMS,
      ['protocol is a string', { protocol: '1', version: 'x' }],
      ['protocol is an object', { protocol: { a: 1 }, version: nestedObject(3000) }],
      ['version is huge', { protocol: 2, version: 'v'.repeat(300_000) }],
    ];
    for (const [what, params] of shapes) {
      const raw = await Wire.connect(sb.socket);
      raw.send({ id: 1, type: 'hello', params });
      const reply = await raw.reply(1);
      expect(reply.ok, what).toBe(false);
      expect(['BAD_FRAME', 'PROTOCOL_MISMATCH'], what).toContain((reply.error as { code: string }).code);
      expect((reply.error as { message: string }).message.length, what).toBeLessThan(1000);
      await waitFor(() => raw.closed, 20_000, 'the daemon to close the connection');
    }
    expect(await statusPid(sb)).toBe(pid);
  });

  it('answers a listen.ack with params that are not an ack, and keeps the stream working', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const pid = await statusPid(sb);
    const raw = await Wire.greeted(sb.socket);
    raw.send({ id: 2, type: 'listen', params: { queues: ['q'], from: 'all' } });
    for (const [what, params] of WRONG_PARAMS) {
      raw.send({ id: 3, type: 'listen.ack', params });
      const reply = await raw.reply(3);
      expect(reply, what).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
      raw.forget(3);
    }
    await ok(sb, ['publish', 'q', '--data', 'after the bad acks']);
    await waitFor(() => raw.events(2).length > 0, 20_000, 'the stream event');
    expect(raw.events(2)[0]!.event).toMatchObject({ message: { data: 'after the bad acks' } });
    expect(await statusPid(sb)).toBe(pid);
    raw.destroy();
  });
});
