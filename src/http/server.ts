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
import { createServer as createHttpServer } from 'node:http';
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
import type { HttpCall, Method, Reply, Route, StreamTarget } from './routes.js';
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

interface Compiled {
  route: Route;
  pattern: RegExp;
  names: string[];
}

function compile(route: Route): Compiled {
  const names: string[] = [];
  const source = route.path.replace(/[.]/g, '\\.').replace(/\{(\w+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { route, pattern: new RegExp(`^${source}$`), names };
}

export class HttpApi {
  private readonly server: Server;
  private readonly routes: Compiled[];
  private readonly document: unknown;
  private readonly closers = new Set<() => void>();
  private readonly metrics: Metrics;
  /** Requests being answered (streams not counted): the daemon waits for them before it closes the store. */
  private inFlight = 0;
  private draining = false;
  url = '';

  private constructor(
    private readonly options: HttpOptions,
    private readonly ctx: HandlerContext,
    private readonly log: Logger,
    tls: { cert: Buffer; key: Buffer } | undefined,
  ) {
    this.metrics = createMetrics(ctx);
    const all = [...ROUTES, EVENTS_ROUTE, metricsRoute(this.metrics), documentRoute(() => this.document)];
    this.routes = all.map(compile);
    this.document = openApiDocument(all);
    const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
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
      // Headers or body not in within the timeout (a slowloris client): 408, then closed.
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
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
    for (const { route, pattern, names } of this.routes) {
      const m = pattern.exec(path);
      if (!m) continue;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
        allowed.push(route.method);
        continue;
      }
      const params: Record<string, string> = {};
      names.forEach((name, i) => (params[name] = decodeURIComponent(m[i + 1]!)));
      return { route, params };
    }
    return allowed;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let streamed = false;
    this.inFlight++;
    try {
      if (this.draining) {
        res.setHeader('Connection', 'close');
        throw new DiscueError('SHUTTING_DOWN', 'the daemon is shutting down');
      }
      const url = new URL(req.url ?? '/', 'http://discue');
      const found = this.match(req.method ?? 'GET', url.pathname);
      if (Array.isArray(found)) {
        if (found.length > 0) res.setHeader('Allow', found.join(', '));
        throw new DiscueError(
          'ROUTE_NOT_FOUND',
          found.length > 0 ? `${url.pathname} takes ${found.join(', ')}, not ${req.method}` : `no route ${url.pathname} (see /openapi.json)`,
        );
      }
      const { route, params } = found;
      const scopes = this.authorize(req, route, params);
      const call: HttpCall = {
        params,
        query: url.searchParams,
        headers: req.headers,
        body: bodyReader(req),
        scopes,
        // Asked again by a long stream: a token revoked meanwhile ends it.
        stillAuthorized: () => {
          try {
            this.authorize(req, route, params);
            return true;
          } catch {
            return false;
          }
        },
        ctx: this.ctx,
      };
      const reply = await route.handle(call, this.streamTarget(req, res, () => {
        streamed = true;
        this.inFlight--;
      }));
      if (reply !== 'streamed') this.sendReply(res, reply);
    } catch (err) {
      this.sendError(res, err);
    } finally {
      if (!streamed) this.inFlight--;
    }
  }

  /** The token's scopes, or a 401/403 that tells nothing about what the request names. */
  private authorize(req: IncomingMessage, route: Route, params: Record<string, string>): string[] {
    if (route.scope === null) return [];
    const header = req.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const scopes = bearer ? this.ctx.tokens.verify(bearer[1]!) : undefined;
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

  private streamTarget(req: IncomingMessage, res: ServerResponse, started: () => void): StreamTarget {
    const closers = this.closers;
    return {
      start: (status, headers) => {
        started();
        // A stream has no request timeout: its heartbeats keep the connection alive.
        req.socket.setTimeout(0);
        res.writeHead(status, headers);
        res.flushHeaders();
      },
      write: (text) => res.write(text),
      drain: () => new Promise<void>((resolve) => (res.writableNeedDrain ? res.once('drain', resolve).once('close', resolve) : resolve())),
      heartbeatMs: Math.min(15_000, Math.floor((this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 2)),
      onClose: (callback) => {
        const close = () => {
          closers.delete(close);
          callback();
          res.end();
        };
        closers.add(close);
        res.once('close', () => {
          if (closers.delete(close)) callback();
        });
      },
      end: () => res.end(),
      get closed() {
        return res.destroyed || res.writableEnded;
      },
    };
  }

  private sendReply(res: ServerResponse, reply: Reply): void {
    if (reply.contentType === undefined) return this.send(res, reply.status, reply.body);
    const text = String(reply.body);
    res.writeHead(reply.status, { 'content-type': reply.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(text);
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

async function readTlsFile(key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new DiscueError('INVALID_ARGUMENT', `cannot read ${key} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads the body once, refusing it past the socket's frame limit. */
function bodyReader(req: IncomingMessage): () => Promise<Buffer> {
  let body: Promise<Buffer> | undefined;
  return () =>
    (body ??= new Promise<Buffer>((resolve, reject) => {
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
      req.once('end', () => resolve(Buffer.concat(chunks)));
      req.once('error', reject);
    }));
}

function tooLarge(): DiscueError {
  return new DiscueError('MESSAGE_TOO_LARGE', `the request body is over ${MAX_FRAME_BYTES / 1024 / 1024} MiB, the limit of one request`);
}
