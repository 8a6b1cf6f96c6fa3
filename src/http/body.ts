/**
 * The messages of a publish request, by Content-Type. The handler checks
 * each message as it checks the socket's; this only unwraps the body.
 *
 * - application/json (and curl -d's default, form-urlencoded, and none):
 *   one message object, or an array of them;
 * - application/x-ndjson: one message object a line;
 * - application/cloudevents+json (structured CloudEvent) or ce-* headers
 *   (binary mode): `type` becomes the name, `data` the data, `source` and
 *   `id` together the idempotency key (a CloudEvent is unique by them); the
 *   other attributes are not stored.
 */
import { DiscueError } from '../protocol/errors.js';
import type { MessageInput } from '../protocol/wire.js';
import type { HttpCall } from './routes.js';

const JSON_TYPES = new Set(['', 'application/json', 'application/x-www-form-urlencoded', 'text/plain']);

export function mediaType(headers: HttpCall['headers']): string {
  const value = headers['content-type'];
  return (typeof value === 'string' ? value : '').split(';')[0]!.trim().toLowerCase();
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DiscueError('INVALID_JSON', `${where} is not valid JSON: ${(err as Error).message}`);
  }
}

export async function readMessages(c: HttpCall): Promise<unknown[]> {
  const type = mediaType(c.headers);
  const header = (name: string): string | undefined => {
    const value = c.headers[name];
    return typeof value === 'string' ? value : undefined;
  };
  if (header('ce-specversion') !== undefined) return [binaryCloudEvent(header, (await c.body()).toString('utf8'))];
  const text = (await c.body()).toString('utf8');
  if (type === 'application/cloudevents+json') return [structuredCloudEvent(parseJson(text, 'the CloudEvent'))];
  if (type === 'application/x-ndjson') {
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    return lines.map((line, i) => parseJson(line, `line ${i + 1}`));
  }
  if (!JSON_TYPES.has(type)) {
    throw new DiscueError(
      'UNSUPPORTED_MEDIA_TYPE',
      `cannot publish a body of type ${type}: send application/json, application/x-ndjson, application/cloudevents+json, or a CloudEvent in binary mode (ce-* headers)`,
    );
  }
  const value = parseJson(text, 'the request body');
  if (Array.isArray(value)) return value;
  // One message: the Idempotency-Key header is its key (a key in the body wins).
  const key = header('idempotency-key');
  if (key !== undefined && typeof value === 'object' && value !== null && !('key' in value)) return [{ ...value, key }];
  return [value];
}

const CE_REQUIRED = ['id', 'source', 'type'] as const;

function cloudEventMessage(attrs: Record<string, unknown>, data: string): MessageInput {
  if (attrs.specversion !== '1.0') {
    throw new DiscueError('INVALID_MESSAGE', `CloudEvents specversion must be "1.0", got ${JSON.stringify(attrs.specversion)}`);
  }
  for (const name of CE_REQUIRED) {
    if (typeof attrs[name] !== 'string' || attrs[name] === '') {
      throw new DiscueError('INVALID_MESSAGE', `a CloudEvent needs the attribute "${name}" (a non-empty string)`);
    }
  }
  return { name: attrs.type as string, data, key: `${attrs.source as string} ${attrs.id as string}` };
}

function binaryCloudEvent(header: (name: string) => string | undefined, body: string): MessageInput {
  return cloudEventMessage(
    { specversion: header('ce-specversion'), id: header('ce-id'), source: header('ce-source'), type: header('ce-type') },
    body,
  );
}

function structuredCloudEvent(value: unknown): MessageInput {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DiscueError('INVALID_MESSAGE', 'a structured CloudEvent is a JSON object');
  }
  const event = value as Record<string, unknown>;
  let data: string;
  if (typeof event.data_base64 === 'string') data = Buffer.from(event.data_base64, 'base64').toString('utf8');
  else if (typeof event.data === 'string') data = event.data;
  else if (event.data === undefined) data = '';
  // JSON data (an object, a number) is kept as its JSON text: `data` is a string.
  else data = JSON.stringify(event.data);
  return cloudEventMessage(event, data);
}
