/**
 * Every route of the HTTP API, in one table: the router serves it and
 * openapi.ts documents it, so the document cannot drift from what answers.
 * A route calls the same handler as the socket request it mirrors
 * (daemon/handlers): one implementation per operation, one set of checks.
 */
import type { ParamsOf, ResultOf } from '../protocol/requests.js';
import type { MessageInput } from '../protocol/wire.js';
import { DiscueError } from '../protocol/errors.js';
import { handlers } from '../daemon/handlers/index.js';
import type { HandledType, HandlerContext, RequestContext } from '../daemon/handlers/index.js';
import { allows } from '../daemon/tokens.js';
import type { ScopeKind } from '../daemon/tokens.js';
import { readMessages } from './body.js';
import type { Schema } from './schemas.js';
import * as S from './schemas.js';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** What a route is given. */
/** The query string's parameters, read only (an empty query is one instance shared by every request). */
export type Query = Pick<URLSearchParams, 'get'>;

export interface HttpCall {
  params: Record<string, string>;
  query: Query;
  headers: Record<string, string | string[] | undefined>;
  /** The request body, read (within the body limit) on first call. */
  body(): Promise<Buffer>;
  /** The token's scopes; [] on a public route. */
  scopes: string[];
  /**
   * Checks the request's token again, as at its start (throws UNAUTHORIZED
   * or FORBIDDEN): a long stream asks it, so a token revoked meanwhile, or a
   * queue renamed to a name the token does not cover, ends it.
   */
  authorizeAgain(queue?: string): void;
  ctx: HandlerContext;
}

export interface Reply {
  status: number;
  /** Sent as JSON; as it is (a string) when contentType is given. */
  body: unknown;
  contentType?: string;
}

export interface QueryParam {
  name: string;
  schema: Schema;
  description: string;
}

export interface Route {
  method: Method;
  /** OpenAPI path template: /v1/queues/{queue}. */
  path: string;
  summary: string;
  /** The scope a token needs; null for a public route. With a {queue} in the path, `publish` and `read` may be for that queue. */
  scope: ScopeKind | null;
  /** A per-queue scope of that kind is enough: the route itself shows only that queue's part. */
  anyQueue?: boolean;
  query?: QueryParam[];
  /** The JSON request body, for the document (the handler checks it). */
  body?: { schema: Schema; required: boolean; contentTypes?: string[] };
  response: { status: number; schema: Schema; contentType?: string };
  /** Statuses of the errors this route may answer, besides 401/403 (from scope) and 400. */
  errors: number[];
  /** Answers the call; a route that streams (SSE) returns 'streamed' after taking over the response. */
  handle(call: HttpCall, stream: StreamTarget): Promise<Reply | 'streamed'>;
}

/** What a streaming route writes to (the raw response, kept abstract here). */
export interface StreamTarget {
  start(status: number, headers: Record<string, string>): void;
  write(text: string): boolean;
  /** Resolves once what was written has gone out (or the client left). */
  drain(): Promise<void>;
  /** How often an idle stream sends a comment, well within the idle timeout. */
  readonly heartbeatMs: number;
  onClose(callback: () => void): void;
  end(): void;
  readonly closed: boolean;
}

const NO_STREAM: RequestContext = {
  id: 0,
  emit: () => undefined,
  onClose: () => undefined,
  streams: new Map(),
};

/** Calls the socket's handler for a request type. */
export function call<T extends HandledType>(ctx: HandlerContext, type: T, params: ParamsOf<T>): Promise<ResultOf<T>> {
  return handlers[type](params, ctx, NO_STREAM) as Promise<ResultOf<T>>;
}

export async function jsonBody(c: HttpCall): Promise<Record<string, unknown>> {
  const raw = await c.body();
  if (raw.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new DiscueError('INVALID_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DiscueError('INVALID_ARGUMENT', 'the request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function intQuery(query: Query, name: string): number | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  if (!/^\d+$/.test(text)) throw new DiscueError('INVALID_ARGUMENT', `"${name}" must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function stringQuery(query: Query, name: string): string | undefined {
  return query.get(name) ?? undefined;
}

function boolQuery(query: Query, name: string): boolean | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  if (text !== 'true' && text !== 'false') throw new DiscueError('INVALID_ARGUMENT', `"${name}" takes true or false`);
  return text === 'true';
}

const ok = (body: unknown, status = 200): Reply => ({ status, body });

const limitParam: QueryParam = { name: 'limit', schema: { type: 'integer', minimum: 1, maximum: 10000 }, description: 'most records in the page (default 100)' };

/** The queue-scoped part of GET /v1/queues: a token reads the queues it may read. */
function readable(scopes: string[], queue: string): boolean {
  return allows(scopes, 'read', queue);
}

export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/healthz',
    summary: 'Liveness: 200 while the daemon serves',
    scope: null,
    response: { status: 200, schema: S.health },
    errors: [503],
    handle: async () => ok({ ok: true }),
  },
  // ---- queues ----
  {
    method: 'GET',
    path: '/v1/queues',
    summary: 'List the queues (those the token may read)',
    scope: 'read',
    anyQueue: true,
    response: { status: 200, schema: { type: 'array', items: S.queue } },
    errors: [],
    handle: async (c) => ok((await call(c.ctx, 'queue.list', {})).filter((q) => readable(c.scopes, q.name))),
  },
  {
    method: 'POST',
    path: '/v1/queues',
    summary: 'Create a queue',
    scope: 'admin',
    body: { schema: S.queueCreate, required: true },
    response: { status: 201, schema: S.queue },
    errors: [409],
    handle: async (c) => ok(await call(c.ctx, 'queue.create', (await jsonBody(c)) as ParamsOf<'queue.create'>), 201),
  },
  {
    method: 'GET',
    path: '/v1/queues/{queue}',
    summary: 'Show a queue',
    scope: 'read',
    response: { status: 200, schema: S.queue },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'queue.get', { name: c.params.queue! })),
  },
  {
    method: 'PATCH',
    path: '/v1/queues/{queue}',
    summary: 'Change a queue’s schema, retention or size limit (null removes one)',
    scope: 'admin',
    body: { schema: S.queueUpdate, required: true },
    response: { status: 200, schema: S.queue },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'queue.update', { ...(await jsonBody(c)), name: c.params.queue! })),
  },
  {
    method: 'DELETE',
    path: '/v1/queues/{queue}',
    summary: 'Delete a queue (with its messages only with force=true)',
    scope: 'admin',
    query: [{ name: 'force', schema: { type: 'boolean' }, description: 'delete the queue even if it holds messages' }],
    response: { status: 200, schema: S.deleted },
    errors: [404, 409],
    handle: async (c) => {
      const force = boolQuery(c.query, 'force');
      return ok(await call(c.ctx, 'queue.delete', { name: c.params.queue!, ...(force === undefined ? {} : { force }) }));
    },
  },
  {
    method: 'POST',
    path: '/v1/queues/{queue}/rename',
    summary: 'Rename a queue: {"to":"NEW_NAME"}; its messages and listeners go with it',
    scope: 'admin',
    body: { schema: { type: 'object', properties: { to: { type: 'string' } }, required: ['to'] }, required: true },
    response: { status: 200, schema: S.queue },
    errors: [404, 409],
    handle: async (c) => ok(await call(c.ctx, 'queue.rename', { ...(await jsonBody(c)), name: c.params.queue! } as ParamsOf<'queue.rename'>)),
  },
  {
    method: 'POST',
    path: '/v1/queues/{queue}/purge',
    summary: 'Delete every message of a queue',
    scope: 'admin',
    response: { status: 200, schema: S.deleted },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'queue.purge', { name: c.params.queue! })),
  },
  // ---- messages ----
  {
    method: 'POST',
    path: '/v1/queues/{queue}/messages',
    summary: 'Publish one message (an object), a batch (an array or NDJSON), or a CloudEvent',
    scope: 'publish',
    body: {
      schema: { oneOf: [S.messageInput, { type: 'array', items: S.messageInput, minItems: 1, maxItems: 10000 }] },
      required: true,
      contentTypes: ['application/json', 'application/x-ndjson', 'application/cloudevents+json'],
    },
    query: [
      { name: 'wait', schema: { type: 'boolean' }, description: 'answer once every listener of the queue has the messages (or a delivery is dead), as `publish --wait`' },
      { name: 'waitTimeoutMs', schema: { type: 'integer', minimum: 1 }, description: 'with wait: how long at most (default 30000)' },
    ],
    response: { status: 201, schema: S.publishResult },
    errors: [404, 413, 415, 422],
    handle: async (c) => {
      const messages = await readMessages(c);
      const params: ParamsOf<'publish'> = { queue: c.params.queue!, messages: messages as MessageInput[] };
      const wait = boolQuery(c.query, 'wait');
      if (wait !== undefined) params.wait = wait;
      const waitTimeoutMs = intQuery(c.query, 'waitTimeoutMs');
      if (waitTimeoutMs !== undefined) params.waitTimeoutMs = waitTimeoutMs;
      // The handler checks each message, as it checks the socket's.
      return ok(await call(c.ctx, 'publish', params), 201);
    },
  },
  {
    method: 'GET',
    path: '/v1/queues/{queue}/messages',
    summary: 'List messages, oldest first, a page at a time',
    scope: 'read',
    query: [
      limitParam,
      { name: 'next', schema: { type: 'string' }, description: 'the `next` of the page before; pages end with one that holds no messages' },
      { name: 'after', schema: { type: 'string' }, description: 'only messages after this message id' },
      { name: 'sinceMs', schema: { type: 'integer', minimum: 0 }, description: 'only messages stored from this Unix time in ms' },
    ],
    response: { status: 200, schema: S.messagePage },
    errors: [404],
    handle: async (c) => {
      const params: ParamsOf<'messages.page'> = { queue: c.params.queue! };
      const limit = intQuery(c.query, 'limit');
      if (limit !== undefined) params.limit = limit;
      const next = stringQuery(c.query, 'next');
      if (next !== undefined) params.next = next;
      const after = stringQuery(c.query, 'after');
      if (after !== undefined) params.afterId = after;
      const sinceMs = intQuery(c.query, 'sinceMs');
      if (sinceMs !== undefined) params.sinceMs = sinceMs;
      const page = await call(c.ctx, 'messages.page', params);
      const body: Record<string, unknown> = { messages: page.messages };
      if (page.next !== undefined) body.next = page.next;
      if (page.damaged.length > 0) body.damaged = page.damaged;
      return ok(body);
    },
  },
  {
    method: 'GET',
    path: '/v1/queues/{queue}/messages/{id}',
    summary: 'Show one message',
    scope: 'read',
    response: { status: 200, schema: S.envelope },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'messages.get', { queue: c.params.queue!, id: c.params.id! })),
  },
  {
    method: 'DELETE',
    path: '/v1/queues/{queue}/messages/{id}',
    summary: 'Delete one message',
    scope: 'admin',
    response: { status: 200, schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'messages.delete', { queue: c.params.queue!, id: c.params.id! })),
  },
  // ---- listeners ----
  {
    method: 'GET',
    path: '/v1/listeners',
    summary: 'List listeners',
    scope: 'listeners',
    query: [{ name: 'queue', schema: { type: 'string' }, description: 'only the listeners of this queue' }],
    response: { status: 200, schema: { type: 'array', items: S.listener } },
    errors: [],
    handle: async (c) => {
      const queue = stringQuery(c.query, 'queue');
      return ok(await call(c.ctx, 'listener.list', queue === undefined ? {} : { queue }));
    },
  },
  {
    method: 'POST',
    path: '/v1/listeners',
    summary: 'Add an HTTP listener (the secret is in this answer only); command listeners need the admin scope',
    scope: 'listeners',
    body: { schema: S.listenerAdd, required: true },
    response: { status: 201, schema: S.listener },
    errors: [404, 409],
    handle: async (c) => {
      const params = await jsonBody(c);
      // A command listener runs a program as the daemon's user: that is the admin's alone.
      if (params.kind === 'exec' && !allows(c.scopes, 'admin')) {
        throw new DiscueError('FORBIDDEN', 'a command listener (kind "exec") needs a token with the admin scope');
      }
      return ok(await call(c.ctx, 'listener.add', params as unknown as ParamsOf<'listener.add'>), 201);
    },
  },
  {
    method: 'GET',
    path: '/v1/listeners/{listener}',
    summary: 'Show a listener (by id or name)',
    scope: 'listeners',
    response: { status: 200, schema: S.listener },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'listener.get', { ref: c.params.listener! })),
  },
  {
    method: 'DELETE',
    path: '/v1/listeners/{listener}',
    summary: 'Remove a listener',
    scope: 'listeners',
    response: { status: 200, schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'listener.remove', { ref: c.params.listener! })),
  },
  {
    method: 'PATCH',
    path: '/v1/listeners/{listener}',
    summary: 'Change what a listener chooses: filters, rate, liveness URL (null clears one)',
    scope: 'listeners',
    body: { schema: S.listenerUpdate, required: true },
    response: { status: 200, schema: S.listener },
    errors: [404],
    handle: async (c) => {
      const params = await jsonBody(c);
      return ok(await call(c.ctx, 'listener.update', { ...params, ref: c.params.listener! } as ParamsOf<'listener.update'>));
    },
  },
  {
    method: 'POST',
    path: '/v1/listeners/{listener}/replay',
    summary: 'Move a listener back to a time or a message and deliver again from there (dryRun: only count)',
    scope: 'listeners',
    body: { schema: S.listenerReplay, required: true },
    response: { status: 200, schema: S.replayed },
    errors: [404],
    handle: async (c) => {
      const params = await jsonBody(c);
      return ok(await call(c.ctx, 'listener.replay', { ...params, ref: c.params.listener! } as ParamsOf<'listener.replay'>));
    },
  },
  {
    method: 'POST',
    path: '/v1/listeners/{listener}/pause',
    summary: 'Pause a listener (messages wait for it)',
    scope: 'listeners',
    response: { status: 200, schema: S.listener },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'listener.pause', { ref: c.params.listener! })),
  },
  {
    method: 'POST',
    path: '/v1/listeners/{listener}/resume',
    summary: 'Resume a paused or disabled listener',
    scope: 'listeners',
    response: { status: 200, schema: S.listener },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'listener.resume', { ref: c.params.listener! })),
  },
  // ---- deliveries ----
  {
    method: 'GET',
    path: '/v1/deliveries',
    summary: 'List delivery records',
    scope: 'listeners',
    query: [
      { name: 'listener', schema: { type: 'string' }, description: 'only this listener’s (id or name)' },
      { name: 'state', schema: { enum: ['pending', 'failed', 'dead', 'delivered'] }, description: 'only deliveries in this state' },
      limitParam,
    ],
    response: { status: 200, schema: { type: 'array', items: S.delivery } },
    errors: [404],
    handle: async (c) => {
      const params: ParamsOf<'deliveries.list'> = {};
      const listener = stringQuery(c.query, 'listener');
      if (listener !== undefined) params.listener = listener;
      const state = stringQuery(c.query, 'state');
      if (state !== undefined) params.state = state as ParamsOf<'deliveries.list'>['state'];
      const limit = intQuery(c.query, 'limit');
      if (limit !== undefined) params.limit = limit;
      return ok(await call(c.ctx, 'deliveries.list', params));
    },
  },
  {
    method: 'POST',
    path: '/v1/deliveries/retry',
    summary: 'Send a failed or dead delivery again: {"id":"LISTENER/MESSAGE_ID"} or {"allDead":true}',
    scope: 'listeners',
    body: { schema: S.retry, required: true },
    response: { status: 200, schema: { type: 'object', properties: { retried: { type: 'integer' } }, required: ['retried'] } },
    errors: [404],
    handle: async (c) => ok(await call(c.ctx, 'deliveries.retry', (await jsonBody(c)) as ParamsOf<'deliveries.retry'>)),
  },
  // ---- statistics ----
  {
    method: 'GET',
    path: '/v1/stats',
    summary: 'Statistics of the daemon, its queues and listeners (as `discue top`); needs `read` for all queues',
    scope: 'read',
    query: [{ name: 'recent', schema: { type: 'integer', minimum: 0, maximum: 200 }, description: 'how many recent delivery attempts (default 50)' }],
    response: { status: 200, schema: { type: 'object' } },
    errors: [],
    handle: async (c) => {
      const recent = intQuery(c.query, 'recent');
      return ok(await call(c.ctx, 'stats', recent === undefined ? {} : { recent }));
    },
  },
];

