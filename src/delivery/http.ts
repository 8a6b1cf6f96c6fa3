/**
 * HTTP delivery: POST of the envelope as JSON with Standard Webhooks headers.
 * 2xx is success; any other status, a network error or a timeout is a failed
 * attempt. Retry-After is passed up; 410 Gone disables the listener.
 */
import type { Agent, Dispatcher } from 'undici';
import type { Envelope } from '../protocol/wire.js';
import type { ListenerRecord } from '../backend/types.js';
import { VERSION } from '../version.js';
import { parseRetryAfter } from './backoff.js';
import { signer } from './signature.js';
import { cloudEventHeaders } from './cloudevents.js';
import { tail } from './types.js';
import type { SendResult, Sender } from './types.js';

/** Response bytes read at most, to keep a tail without trusting the receiver. */
const MAX_RESPONSE_READ = 64 * 1024;

type Undici = typeof import('undici');

/**
 * undici is loaded on the first HTTP delivery, not at daemon start: it is a
 * large module graph, and a daemon's start-up time is what every first
 * command waits for.
 */
let undici: Promise<Undici> | undefined;
/** One keep-alive agent for all HTTP listeners of the daemon; set once undici is loaded. */
let sharedAgent: Agent | undefined;
const MAX_CONNECTIONS_PER_ORIGIN = 512;
async function client(): Promise<{ request: Undici['request']; agent: Agent }> {
  const mod = await (undici ??= import('undici'));
  // Connections per receiver origin. Each listener keeps at most its concurrency in flight, so
  // what is in flight to one host already bounds them; 64 made the 65th listener to the same
  // host wait for another listener's socket (100 listeners on one host delivered at 0.53x
  // a raw loop with 100 connections). The cap only guards the daemon's file descriptors.
  sharedAgent ??= new mod.Agent({ keepAliveTimeout: 10_000, connections: MAX_CONNECTIONS_PER_ORIGIN });
  return { request: mod.request, agent: sharedAgent };
}

/** The names cloudEventHeaders sets (an envelope's values do not matter here). */
const CLOUDEVENT_HEADERS = cloudEventHeaders({ id: '', queue: '', data: '', publishedAt: '' });

/** One attempt in flight: how it ends, and who ended it early. */
interface Flight {
  /** undici's abort for this request (set when it is dispatched). */
  abort?: (err: Error) => void;
  /** Why it was cut short: the daemon stopping, or the attempt's deadline. */
  cut?: 'stopped' | 'timeout';
  timeoutMs: number;
  finish(result: SendResult): void;
}

export class HttpSender implements Sender {
  private readonly origin: string;
  private readonly path: string;
  private readonly authorization: string | undefined;
  /** What every request of this listener carries, built once (see fixedFor). */
  private fixed:
    | { headers: Record<string, string> | undefined; secret: string | undefined; cloudevents: boolean | undefined; list: string[]; sign?: ReturnType<typeof signer> }
    | undefined;
  /** Attempts in flight, aborted together when the worker's stop signal fires (one listener per signal, not per attempt). */
  private readonly flights = new Set<Flight>();
  private watched: AbortSignal | undefined;

  constructor(private readonly listener: ListenerRecord) {
    const { url, authorization } = splitCredentials(listener.url!);
    const parsed = new URL(url);
    this.origin = parsed.origin;
    this.path = parsed.pathname + parsed.search;
    this.authorization = authorization;
  }

  /**
   * Sent with undici's dispatch API, not `request()`: no response stream, no
   * AbortController and no URL parsing per attempt, and the headers that do
   * not change are built once. One delivery in flight per listener makes the
   * time between deliveries the cost, and these showed in its profile.
   */
  async send(message: Envelope, _attempt: number, signal: AbortSignal): Promise<SendResult> {
    if (signal.aborted) return { ok: false, error: 'stopped by the daemon' };
    this.watch(signal);
    const fixed = this.fixedFor();
    const body = JSON.stringify(message);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const headers = fixed.list.slice();
    headers.push('webhook-id', message.id, 'webhook-timestamp', timestamp);
    if (fixed.sign) headers.push('webhook-signature', fixed.sign(message.id, Number(timestamp), body));
    if (this.listener.cloudevents) for (const [k, v] of Object.entries(cloudEventHeaders(message))) headers.push(k, v);
    const agent = sharedAgent ?? (await client()).agent;
    if (signal.aborted) return { ok: false, error: 'stopped by the daemon' };
    const { timeoutMs } = this.listener;
    return new Promise<SendResult>((resolve) => {
      let done = false;
      // One deadline for the whole attempt (connect, headers, body): undici's own
      // timeouts are per phase and idle-based, so a body trickling in a byte at a
      // time would hold the delivery, and the listener's order, for ever.
      // Started once undici is loaded, not before: the first HTTP delivery of a
      // daemon loads it, and on a busy machine that alone can outlast a short
      // --timeout, failing an attempt that never reached the receiver.
      const timer = setTimeout(() => flight.cut ?? cut(flight, 'timeout'), timeoutMs);
      const flight: Flight = {
        timeoutMs,
        finish: (result) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          this.flights.delete(flight);
          resolve(result);
        },
      };
      this.flights.add(flight);
      agent.dispatch(
        { origin: this.origin, path: this.path, method: 'POST', headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs },
        new ResponseReader(flight),
      );
    });
  }

  private watch(signal: AbortSignal): void {
    if (this.watched === signal) return;
    this.watched = signal;
    signal.addEventListener(
      'abort',
      () => {
        for (const flight of [...this.flights]) cut(flight, 'stopped');
      },
      { once: true },
    );
  }

  /** The headers that are the same for every request, and the signer; rebuilt if the record's were replaced. */
  private fixedFor(): NonNullable<HttpSender['fixed']> {
    const { headers, secret, cloudevents } = this.listener;
    if (this.fixed && this.fixed.headers === headers && this.fixed.secret === secret && this.fixed.cloudevents === cloudevents) return this.fixed;
    const all: Record<string, string> = {
      'user-agent': `discue/${VERSION}`,
      ...(this.authorization === undefined ? {} : { authorization: this.authorization }),
      ...lowerKeys(headers ?? {}),
      'content-type': 'application/json',
    };
    // Set per message, in place of a user header of the same name.
    const perMessage = ['webhook-id', 'webhook-timestamp'];
    if (secret) perMessage.push('webhook-signature');
    if (cloudevents) perMessage.push(...Object.keys(CLOUDEVENT_HEADERS));
    for (const name of perMessage) delete all[name];
    const list: string[] = [];
    for (const [k, v] of Object.entries(all)) list.push(k, v);
    this.fixed = { headers, secret, cloudevents, list };
    if (secret) this.fixed.sign = signer(secret);
    return this.fixed;
  }
}

function cut(flight: Flight, why: 'stopped' | 'timeout'): void {
  flight.cut ??= why;
  const err = new Error(why);
  if (flight.abort) flight.abort(err);
  else flight.finish(failure(flight, err));
}

function failure(flight: Flight, err: Error & { code?: string }): SendResult {
  if (flight.cut === 'stopped') return { ok: false, error: 'stopped by the daemon' };
  if (flight.cut === 'timeout' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT') {
    return { ok: false, error: `timed out after ${flight.timeoutMs} ms` };
  }
  return { ok: false, error: err.code ? `${err.code}: ${err.message}` : err.message };
}

/** undici's (legacy) dispatch handler: the status, Retry-After, and up to MAX_RESPONSE_READ bytes of the body. */
class ResponseReader implements Dispatcher.DispatchHandler {
  private status = 0;
  private retryAfter: string | undefined;
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly flight: Flight) {}

  onConnect(abort: (err?: Error) => void): void {
    this.flight.abort = abort;
    // Cut before undici took it (stop or deadline while queued for a connection).
    if (this.flight.cut) abort(new Error(this.flight.cut));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.status = statusCode;
    if (statusCode < 200 || statusCode >= 300) {
      for (let i = 0; i < rawHeaders.length; i += 2) {
        if (rawHeaders[i]!.length === 11 && rawHeaders[i]!.toString('latin1').toLowerCase() === 'retry-after') {
          this.retryAfter ??= rawHeaders[i + 1]!.toString('latin1');
        }
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > MAX_RESPONSE_READ) {
      // Enough of it: the attempt's result is what was read; the connection is closed.
      this.settle();
      this.flight.abort?.(new Error('response too large'));
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.settle();
  }

  onError(err: Error): void {
    this.flight.finish(failure(this.flight, err));
  }

  private settle(): void {
    const status = this.status;
    const text = this.chunks.length === 0 ? '' : Buffer.concat(this.chunks).toString('utf8');
    const result: SendResult = { ok: status >= 200 && status < 300, status, output: tail(text) };
    if (!result.ok) {
      result.error = `HTTP ${status}`;
      const retryAfter = parseRetryAfter(this.retryAfter);
      if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
      if (status === 410) result.gone = true;
    }
    this.flight.finish(result);
  }
}

/** GETs a liveness URL: true for a 2xx within `timeoutMs`; any other answer or none is false. */
export async function probe(target: string, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const { url, authorization } = splitCredentials(target);
  try {
    const { request, agent } = await client();
    const response = await request(url, {
      method: 'GET',
      headers: { 'user-agent': `discue/${VERSION}`, ...(authorization === undefined ? {} : { authorization }) },
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    await response.body.dump();
    return response.statusCode >= 200 && response.statusCode < 300;
  } catch {
    return false;
  }
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/**
 * `http://user:pass@host/` means HTTP Basic authentication, as for curl; undici
 * ignores credentials in a URL, so without this the receiver would see none.
 * A header the user gave (--header Authorization:…) wins.
 */
export function splitCredentials(text: string): { url: string; authorization?: string } {
  const url = new URL(text);
  if (url.username === '' && url.password === '') return { url: text };
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  return { url: url.toString(), authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}
