/**
 * The validation of user input that both sides share. The daemon validates
 * everything again: the CLI checks early only to give a faster, friendlier error.
 */
import { DiscueError } from './errors.js';
import type { MessageInput } from './wire.js';

/** Default and maximum size of a message's `data`, in UTF-8 bytes. */
export const MAX_DATA_BYTES = 256 * 1024;
export const MAX_NAME_LENGTH = 256;
export const QUEUE_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const MAX_KEY_LENGTH = 256;
/** Most messages one publish request may carry (publish.many: all its publishes together). */
export const MAX_BATCH = 10_000;
/**
 * Idempotency keys: printable ASCII (space to ~). Kept to ASCII so a key maps
 * unchanged onto a NATS header (Nats-Msg-Id) and sorts below 0x7f in storage.
 */
const KEY_RE = /^[\x20-\x7e]+$/;


export function validateQueueName(name: unknown): string {
  if (typeof name !== 'string' || !QUEUE_NAME_RE.test(name)) {
    throw new DiscueError(
      'INVALID_QUEUE_NAME',
      `invalid queue name ${JSON.stringify(name)}: use 1-64 characters of a-z A-Z 0-9 . _ -`,
    );
  }
  return name;
}

const MESSAGE_FIELDS = new Set(['data', 'name', 'key']);
/** C0 controls and DEL. */
const CONTROL_CHAR_RE = /[\u0000-\u001f\u007f]/;

/**
 * Checks one message as it arrives from a user. `where` names it in errors
 * ("line 3") for batches.
 */
export function validateMessage(value: unknown, where?: string): MessageInput {
  const at = where ? `${where}: ` : '';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DiscueError('INVALID_MESSAGE', `${at}a message must be a JSON object like {"data":"..."}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!MESSAGE_FIELDS.has(key)) {
      throw new DiscueError(
        'INVALID_MESSAGE',
        `${at}unknown field ${JSON.stringify(key)}: a message has only "data", and optionally "name" and "key"`,
      );
    }
  }
  const { data, name, key } = record;
  if (data === undefined) {
    throw new DiscueError('INVALID_MESSAGE', `${at}the message has no "data" field`);
  }
  if (typeof data !== 'string') {
    throw new DiscueError(
      'INVALID_MESSAGE',
      `${at}"data" must be a string, got ${describeType(data)} (to send JSON, encode it as a string)`,
    );
  }
  const size = Buffer.byteLength(data, 'utf8');
  if (size > MAX_DATA_BYTES) {
    throw new DiscueError(
      'MESSAGE_TOO_LARGE',
      `${at}"data" is ${size} bytes; the limit is ${MAX_DATA_BYTES} bytes (256 KiB)`,
    );
  }
  const message: MessageInput = { data };
  if (name !== undefined) {
    if (typeof name !== 'string') {
      throw new DiscueError('INVALID_MESSAGE', `${at}"name" must be a string, got ${describeType(name)}`);
    }
    if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
      throw new DiscueError('INVALID_MESSAGE', `${at}"name" must be 1-${MAX_NAME_LENGTH} characters`);
    }
    // A command listener gets the name in its environment, which cannot hold a
    // NUL: such a message could never be delivered and would hold up the listener.
    const control = CONTROL_CHAR_RE.exec(name);
    if (control) {
      const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
      throw new DiscueError(
        'INVALID_MESSAGE',
        `${at}"name" contains the control character U+${code} at position ${control.index + 1}; names may not hold C0 control characters or DEL`,
      );
    }
    message.name = name;
  }
  if (key !== undefined) message.key = validateKey(key, at);
  return message;
}

/** An idempotency key: 1-256 printable ASCII characters. */
export function validateKey(key: unknown, at = ''): string {
  if (typeof key !== 'string') {
    throw new DiscueError('INVALID_MESSAGE', `${at}"key" must be a string, got ${describeType(key)}`);
  }
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !KEY_RE.test(key)) {
    throw new DiscueError(
      'INVALID_MESSAGE',
      `${at}invalid key ${JSON.stringify(key.length > 40 ? key.slice(0, 40) + '…' : key)}: a key is 1-${MAX_KEY_LENGTH} printable ASCII characters (space to ~), e.g. an order number or a UUID`,
    );
  }
  return key;
}

/** Parses a message given as JSON text. */
export function parseMessage(text: string, where?: string): MessageInput {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const at = where ? `${where}: ` : '';
    throw new DiscueError('INVALID_JSON', `${at}not valid JSON (${(cause as Error).message})`, { cause });
  }
  return validateMessage(value, where);
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
