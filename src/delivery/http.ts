/**
 * HTTP delivery: POST of the envelope as JSON with Standard Webhooks headers.
 * 2xx is success; any other status, a network error or a timeout is a failed
 * attempt. Retry-After is passed up; 410 Gone disables the listener.
 */
import type { Agent } from 'undici';
import type { Envelope } from '../protocol/wire.js';
import type { ListenerRecord } from '../backend/types.js';
import { VERSION } from '../version.js';
import { parseRetryAfter } from './backoff.js';
import { sign } from './signature.js';
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
/** One keep-alive agent for all HTTP listeners of the daemon. */
let sharedAgent: Agent | undefined;
async function client(): Promise<{ request: Undici['request']; agent: Agent }> {
  const mod = await (undici ??= import('undici'));
  sharedAgent ??= new mod.Agent({ keepAliveTimeout: 10_000, connections: 64 });
  return { request: mod.request, agent: sharedAgent };
}

export class HttpSender implements Sender {
  private readonly target: { url: string; authorization?: string };

  constructor(private readonly listener: ListenerRecord) {
    this.target = splitCredentials(listener.url!);
  }

  async send(message: Envelope, _attempt: number, signal: AbortSignal): Promise<SendResult> {
    const { headers = {}, secret, timeoutMs } = this.listener;
    const { url, authorization } = this.target;
    const body = JSON.stringify(message);
    const timestamp = Math.floor(Date.now() / 1000);
    const all: Record<string, string> = {
      'user-agent': `discue/${VERSION}`,
      ...(authorization === undefined ? {} : { authorization }),
      ...lowerKeys(headers),
      'content-type': 'application/json',
      'webhook-id': message.id,
      'webhook-timestamp': String(timestamp),
    };
    if (secret) all['webhook-signature'] = sign(secret, message.id, timestamp, body);
    if (this.listener.cloudevents) Object.assign(all, cloudEventHeaders(message));
    // One deadline for the whole attempt (connect, headers, body): undici's own
    // timeouts are per phase and idle-based, so a body trickling in a byte at a
    // time would hold the delivery, and the listener's order, for ever.
    const deadline = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => deadline.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { request, agent } = await client();
      // Started once undici is loaded, not before: the first HTTP delivery of a
      // daemon loads it, and on a busy machine that alone can outlast a short
      // --timeout, failing an attempt that never reached the receiver.
      timer = setTimeout(() => deadline.abort(), timeoutMs);
      const response = await request(url, {
        method: 'POST',
        headers: all,
        body,
        signal: deadline.signal,
        dispatcher: agent,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await readSome(response.body);
      const status = response.statusCode;
      const result: SendResult = { ok: status >= 200 && status < 300, status, output: tail(text) };
      if (!result.ok) {
        result.error = `HTTP ${status}`;
        const retryAfter = parseRetryAfter(response.headers['retry-after']);
        if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
        if (status === 410) result.gone = true;
      }
      return result;
    } catch (err) {
      const error = err as Error & { code?: string };
      if (signal.aborted) return { ok: false, error: 'stopped by the daemon' };
      if (deadline.signal.aborted || error.code === 'UND_ERR_HEADERS_TIMEOUT' || error.code === 'UND_ERR_BODY_TIMEOUT') {
        return { ok: false, error: `timed out after ${timeoutMs} ms` };
      }
      return { ok: false, error: error.code ? `${error.code}: ${error.message}` : error.message };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
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

async function readSome(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > MAX_RESPONSE_READ) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
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
