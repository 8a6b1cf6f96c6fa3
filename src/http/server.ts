/**
 * The HTTP API (off by default): node:http (or node:https with a
 * certificate) serving the route table of routes.ts. Loaded by the daemon
 * with a dynamic import only when `http.listen` is set, so nothing else pays
 * for it.
 *
 * Safety: a non-loopback address needs TLS or an explicit `insecure`; the
 * body limit is the socket's frame limit; headers and body must arrive within
 * the timeout, and a connection idle past it is closed, so a slow client
 * (slowloris) never holds the daemon. Tokens never reach the log.
 */
import { readFile } from 'node:fs/promises';
import { STATUS_CODES, createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { DiscueError, HTTP_STATUS, isDiscueError } from '../protocol/errors.js';
import { MAX_FRAME_BYTES } from '../protocol/frames.js';
import type { HandlerContext } from '../daemon/handlers/index.js';
import { allows } from '../daemon/tokens.js';
import type { Logger } from '../observe/log.js';
import { documentRoute, openApiDocument } from './openapi.js';
import { ROUTES } from './routes.js';
import type { HttpCall, Method, Query, Reply, Route, StreamTarget } from './routes.js';
import { EVENTS_ROUTE } from './sse.js';
import { createMetrics, metricsRoute } from './metrics.js';
import type { Metrics } from './metrics.js';
import { assertSafeBind, parseListen } from './listen.js';

export interface HttpOptions {
  /** HOST:PORT ([::1]:7070 for IPv6); port 0 picks a free one. */
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Allow a non-loopback address without TLS. */
  insecure?: boolean;
  /** Headers and body must arrive, and an idle connection is closed, within this (default 30 s). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Open HTTP connections at most (SSE streams included); more are refused at accept. */
const MAX_CONNECTIONS = 1024;
/**
 * Open event streams at most: a stream holds its connection for as long as the
 * client likes, so without this one read token could take every connection
 * and lock all other clients out. Half is left for ordinary requests.
 */
const MAX_STREAMS = MAX_CONNECTIONS / 2;

interface Compiled {
  route: Route;
  /** Per segment of the path: the text it must be, or null where a parameter goes. */
  literals: (string | null)[];
  /** Per segment: the parameter's name, where one goes. */
  names: (string | undefined)[];
}

function compile(route: Route): Compiled {
  const literals: (string | null)[] = [];
  const names: (string | undefined)[] = [];
  for (const part of route.path.split('/')) {
    const param = /^\{(\w+)\}$/.exec(part);
    if (!param && part.includes('{')) throw new Error(`route ${route.path}: a parameter is a whole path segment`);
    literals.push(param ? null : part);
    names.push(param?.[1]);
  }
  return { route, literals, names };
}

/**
 * A request target the router may split as it is: only characters a URL
 * parser leaves alone, and no dot segment (`..`, `%2e`) for it to resolve
 * or backslash for it to turn into a slash. Anything else goes through
 * new URL(), so both ways route every target alike.
 */
const PLAIN_TARGET = /^(?:\/(?!\.)[\w.~!$&'()*+,;=:@%-]*)+(?:\?[\w.~!$&'()*+,;=:@%/?-]*)?$/;
const ENCODED_DOT = /%2e/i;

/** Path and query string of a request target. */
function splitTarget(target: string | undefined): { path: string; search: string } {
  const plain = target !== undefined && PLAIN_TARGET.test(target) && !ENCODED_DOT.test(target);
  if (plain) {
    const q = target.indexOf('?');
    return q < 0 ? { path: target, search: '' } : { path: target.slice(0, q), search: target.slice(q + 1) };
  }
  // Not new URL(req.url, base): that reads `//x/v1/queues` as host x and path /v1/queues.
  const url = new URL(`http://discue${pathOf(target)}`);
  return { path: url.pathname, search: url.search };
}

export class HttpApi {
  private readonly server: Server;
  /** The routes by their number of path segments, in table order (the first that matches answers). */
  private readonly routes = new Map<number, Compiled[]>();
  private readonly document: unknown;
  /** Ends each open stream (at close). */
  readonly closers = new Set<() => void>();
  private readonly metrics: Metrics;
  /** Requests being answered (streams not counted): the daemon waits for them before it closes the store. */
  private inFlight = 0;
  private draining = false;
  /** Headers and body must arrive, and an idle connection is closed, within this. */
  readonly timeoutMs: number;
  url = '';

  private constructor(
    options: HttpOptions,
    private readonly ctx: HandlerContext,
    private readonly log: Logger,
    tls: { cert: Buffer; key: Buffer } | undefined,
  ) {
    this.metrics = createMetrics(ctx);
    const all = [...ROUTES, EVENTS_ROUTE, metricsRoute(this.metrics), documentRoute(() => this.document)];
    for (const compiled of all.map(compile)) {
      const same = this.routes.get(compiled.literals.length);
      if (same) same.push(compiled);
      else this.routes.set(compiled.literals.length, [compiled]);
    }
    this.document = openApiDocument(all);
    const timeout = (this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const serverOptions = {
      headersTimeout: timeout,
      requestTimeout: timeout,
      keepAliveTimeout: Math.min(5000, timeout),
      // Replies are small and whole: sent at once, not held back for more (Nagle).
      noDelay: true,
      // How often Node looks for requests past their timeouts (default 30 s, longer than a short timeout).
      connectionsCheckingInterval: Math.min(1000, timeout),
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse) => void this.serve(req, res);
    this.server = tls ? createHttpsServer({ ...serverOptions, ...tls }, onRequest) : createHttpServer(serverOptions, onRequest);
    // A connection with no traffic either way for this long is closed (SSE sends heartbeats well within it).
    this.server.setTimeout(timeout * 2, (socket) => socket.destroy());
    // Each connection holds a file descriptor and buffers: a flood of them is refused past this.
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Refused by Node before routing, answered with the same error body as any other, then closed.
      const error = clientError(err.code, timeout);
      const status = HTTP_STATUS[error.code];
      const text = JSON.stringify({ error: error.toWire() });
      if (socket.writable) {
        socket.end(
          `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
            `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
        );
      } else socket.destroy();
    });
  }

  static async start(options: HttpOptions, ctx: HandlerContext, log: Logger): Promise<HttpApi> {
    const { host, port } = parseListen(options.listen);
    if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
      throw new DiscueError('INVALID_ARGUMENT', 'TLS needs both http.tlsCert and http.tlsKey');
    }
    const tls =
      options.tlsCert !== undefined && options.tlsKey !== undefined
        ? { cert: await readTlsFile('http.tlsCert', options.tlsCert), key: await readTlsFile('http.tlsKey', options.tlsKey) }
        : undefined;
    assertSafeBind(host, tls !== undefined, options.insecure === true);
    const api = new HttpApi(options, ctx, log, tls);
    await new Promise<void>((resolve, reject) => {
      api.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new DiscueError('INVALID_ARGUMENT', `the HTTP API cannot listen on ${options.listen}: ${err.code ?? err.message}; choose another http.listen`, { cause: err })),
      );
      api.server.listen(port, host, () => {
        api.server.removeAllListeners('error');
        resolve();
      });
    });
    api.server.on('error', (err) => log.error('http server error', { error: err }));
    const address = api.server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    api.url = `${tls ? 'https' : 'http'}://${shownHost}:${address.port}`;
    log.info('http api listening', { url: api.url, tls: tls !== undefined });
    return api;
  }

  get busy(): boolean {
    return this.inFlight > 0;
  }

  /** Stops accepting; open streams end; keep-alive connections close. */
  async close(): Promise<void> {
    // From now on a request on a kept-alive connection is refused: the store is about to close.
    this.draining = true;
    for (const close of [...this.closers]) close();
    this.metrics.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    setTimeout(() => this.server.closeAllConnections(), 2000).unref();
    await closed;
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | Method[] {
    const allowed: Method[] = [];
    const parts = path.split('/');
    candidates: for (const { route, literals, names } of this.routes.get(parts.length) ?? []) {
      for (let i = 0; i < parts.length; i++) {
        const literal = literals[i];
        if (literal === null ? parts[i] === '' : literal !== parts[i]) continue candidates;
      }
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
        allowed.push(route.method);
        continue;
      }
      const params: Record<string, string> = {};
      for (let i = 0; i < parts.length; i++) {
        const name = names[i];
        if (name !== undefined) params[name] = decodePathPart(parts[i]!);
      }
      return { route, params };
    }
    return allowed;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let stream: ResponseStream | undefined;
    this.inFlight++;
    try {
      if (this.draining) {
        res.setHeader('Connection', 'close');
        throw new DiscueError('SHUTTING_DOWN', 'the daemon is shutting down');
      }
      const { path, search } = splitTarget(req.url);
      const found = this.match(req.method ?? 'GET', path);
      if (Array.isArray(found)) {
        if (found.length === 0) throw new DiscueError('ROUTE_NOT_FOUND', `no route ${path} (see /openapi.json)`);
        // HEAD is served wherever GET is, and OPTIONS on every path that exists: both are methods it takes.
        const allow = [...found, ...(found.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
        res.setHeader('Allow', allow);
        // OPTIONS asks which methods a path takes: the Allow header is the answer (no token needed, as /openapi.json tells as much).
        if (req.method === 'OPTIONS') return this.sendEmpty(res, 204);
        throw new DiscueError('METHOD_NOT_ALLOWED', `${path} takes ${allow}, not ${req.method}`);
      }
      const { route, params } = found;
      const scopes = authorize(this.ctx, req, route, params);
      stream = new ResponseStream(this, req, res);
      const reply = await route.handle(new Call(this.ctx, req, route, params, search, scopes), stream);
      if (reply !== 'streamed') this.sendReply(res, reply);
    } catch (err) {
      this.sendError(res, err);
    } finally {
      if (stream?.started !== true) this.inFlight--;
    }
  }

  /** A stream took over its response: it no longer holds up the store's close. */
  streamStarted(): void {
    this.inFlight--;
  }

  private sendReply(res: ServerResponse, reply: Reply): void {
    if (reply.contentType === undefined) return this.send(res, reply.status, reply.body);
    const text = String(reply.body);
    res.writeHead(reply.status, { 'content-type': reply.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendEmpty(res: ServerResponse, status: number): void {
    res.writeHead(status, { 'content-length': 0 });
    res.end();
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private sendError(res: ServerResponse, err: unknown): void {
    const error = isDiscueError(err) ? err : new DiscueError('INTERNAL', 'internal error; see the daemon log');
    if (!isDiscueError(err)) this.log.error('http request failed', { error: err as Error });
    if (error.code === 'UNAUTHORIZED') res.setHeader('WWW-Authenticate', 'Bearer');
    this.send(res, HTTP_STATUS[error.code], { error: error.toWire() });
  }
}

/** The token's scopes, or a 401/403 that tells nothing about what the request names. */
function authorize(ctx: HandlerContext, req: IncomingMessage, route: Route, params: Record<string, string>): string[] {
  if (route.scope === null) return [];
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const scopes = bearer ? ctx.tokens.verify(bearer[1]!) : undefined;
  if (scopes === undefined) {
    throw new DiscueError('UNAUTHORIZED', bearer ? 'the token is not valid (revoked, or never created)' : 'send a token: Authorization: Bearer dq_…');
  }
  const granted =
    allows(scopes, route.scope, params.queue) ||
    (route.anyQueue === true && scopes.some((s) => s.startsWith(`${route.scope}:`)));
  if (!granted) {
    const need = params.queue !== undefined && (route.scope === 'publish' || route.scope === 'read') ? `${route.scope}:${params.queue}` : route.scope;
    throw new DiscueError('FORBIDDEN', `this token's scopes do not include ${need}`);
  }
  return scopes;
}

/** Most requests have no query string: they share this (routes only read a query). */
const NO_QUERY: Query = new URLSearchParams();

/** What a route is given: built once per request, its parts read on demand. */
class Call implements HttpCall {
  private query_: Query | undefined;
  private body_: Promise<Buffer> | undefined;

  constructor(
    readonly ctx: HandlerContext,
    private readonly req: IncomingMessage,
    private readonly route: Route,
    readonly params: Record<string, string>,
    private readonly search: string,
    readonly scopes: string[],
  ) {}

  get headers(): IncomingMessage['headers'] {
    return this.req.headers;
  }

  get query(): Query {
    return (this.query_ ??= this.search === '' ? NO_QUERY : new URLSearchParams(this.search));
  }

  body(): Promise<Buffer> {
    return (this.body_ ??= readBody(this.req));
  }

  authorizeAgain(queue?: string): void {
    authorize(this.ctx, this.req, this.route, queue === undefined ? this.params : { ...this.params, queue });
  }
}

/** The raw response of a streaming route (SSE). */
class ResponseStream implements StreamTarget {
  started = false;
  readonly heartbeatMs: number;

  constructor(
    private readonly api: HttpApi,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    this.heartbeatMs = Math.min(15_000, Math.floor(api.timeoutMs / 2));
  }

  start(status: number, headers: Record<string, string>): void {
    if (this.api.closers.size >= MAX_STREAMS) throw new DiscueError('BUSY', `${MAX_STREAMS} event streams are open, the most at once; retry later`);
    this.started = true;
    this.api.streamStarted();
    // A stream has no request timeout: its heartbeats keep the connection alive.
    this.req.socket.setTimeout(0);
    this.res.writeHead(status, headers);
    this.res.flushHeaders();
  }

  write(text: string): boolean {
    return this.res.write(text);
  }

  drain(): Promise<void> {
    const res = this.res;
    return new Promise<void>((resolve) => {
      if (!res.writableNeedDrain) return resolve();
      // Listeners removed once either fires: a long stream drains many times.
      const done = () => {
        clearTimeout(timer);
        res.off('drain', done).off('close', done);
        resolve();
      };
      // A stream's socket has no idle timeout, so a client that stops reading
      // would hold its connection and a page of messages for ever: cut off.
      const timer = setTimeout(() => {
        res.destroy();
        done();
      }, this.api.timeoutMs);
      res.once('drain', done).once('close', done);
    });
  }

  onClose(callback: () => void): void {
    const closers = this.api.closers;
    const close = () => {
      closers.delete(close);
      callback();
      this.res.end();
    };
    closers.add(close);
    this.res.once('close', () => {
      if (closers.delete(close)) callback();
    });
  }

  end(): void {
    this.res.end();
  }

  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }
}

/** The error for a request Node's parser refused (its error code). */
function clientError(code: string | undefined, timeoutMs: number): DiscueError {
  // Headers or body not in within the timeout: a slowloris client.
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return new DiscueError('REQUEST_TIMEOUT', `the request did not arrive within ${timeoutMs} ms`);
  if (code === 'HPE_HEADER_OVERFLOW') return new DiscueError('HEADERS_TOO_LARGE', 'the request headers are over 16 KiB');
  return new DiscueError('INVALID_ARGUMENT', `not a valid HTTP/1.1 request (${code ?? 'parse error'})`);
}

/** The request target as a path: origin-form as it is, absolute-form (`http://host/p`, from a proxy) without its origin. */
function pathOf(target: string | undefined): string {
  if (target === undefined || target === '') return '/';
  if (target.startsWith('/')) return target;
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  return absolute ? target.slice(absolute[0].length) || '/' : `/${target}`;
}

function decodePathPart(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new DiscueError('INVALID_ARGUMENT', `the path part ${JSON.stringify(text)} is not valid percent-encoding`);
  }
}

async function readTlsFile(key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new DiscueError('INVALID_ARGUMENT', `cannot read ${key} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads the body, refusing it past the socket's frame limit. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_FRAME_BYTES) {
      req.resume();
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FRAME_BYTES) {
        // The rest is read and dropped (within the request timeout), so the client,
        // still sending, gets the 413 rather than a reset connection.
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    // One chunk (a small body) is the body as it is: concat would copy it.
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function tooLarge(): DiscueError {
  return new DiscueError('MESSAGE_TOO_LARGE', `the request body is over ${MAX_FRAME_BYTES / 1024 / 1024} MiB, the limit of one request`);
}
