/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 takes them) of the HTTP API's
 * bodies, for the document. The handlers check what arrives; these say it.
 */
export type Schema = Record<string, unknown>;

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;

export const error: Schema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { ...str, description: 'stable code, as the CLI reports it' }, message: str, details: {} },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
};

export const health: Schema = { type: 'object', properties: { ok: { const: true } }, required: ['ok'] };

export const messageInput: Schema = {
  type: 'object',
  properties: {
    data: { ...str, description: 'the payload, any text up to 256 KiB (JSON travels as a string)' },
    name: { ...str, minLength: 1, maxLength: 256 },
    key: { ...str, minLength: 1, maxLength: 256, description: 'idempotency key (or the Idempotency-Key header for one message)' },
  },
  required: ['data'],
  additionalProperties: false,
};

export const envelope: Schema = {
  type: 'object',
  properties: { id: str, queue: str, name: str, data: str, publishedAt: { ...str, format: 'date-time' } },
  required: ['id', 'queue', 'data', 'publishedAt'],
};

export const publishResult: Schema = {
  type: 'object',
  properties: {
    queue: str,
    ids: { type: 'array', items: str },
    publishedAt: { ...str, format: 'date-time' },
    duplicates: { type: 'array', items: int },
  },
  required: ['queue', 'ids', 'publishedAt'],
};

export const messagePage: Schema = {
  type: 'object',
  properties: {
    messages: { type: 'array', items: envelope },
    next: { ...str, description: 'pass as ?next= for the page after; absent when this page read nothing' },
    damaged: { type: 'array', items: str, description: 'ids of damaged records skipped (never served)' },
  },
  required: ['messages'],
};

const queueLimits = {
  schema: { type: ['object', 'null'], description: 'JSON Schema that data, parsed as JSON, must satisfy' },
  retentionMs: { type: ['integer', 'null'], minimum: 1 },
  maxMessages: { type: ['integer', 'null'], minimum: 1 },
};

export const queueCreate: Schema = {
  type: 'object',
  properties: { name: { ...str, pattern: '^[A-Za-z0-9._-]{1,64}$' }, ...queueLimits },
  required: ['name'],
};

export const queueUpdate: Schema = { type: 'object', properties: queueLimits };

export const queue: Schema = {
  type: 'object',
  properties: {
    name: str,
    createdAt: { ...str, format: 'date-time' },
    schema: { type: 'object' },
    retentionMs: int,
    maxMessages: int,
    messages: int,
    bytes: int,
    stats: { type: 'object' },
  },
  required: ['name', 'createdAt', 'messages'],
};

export const deleted: Schema = { type: 'object', properties: { name: str, deleted: int }, required: ['name', 'deleted'] };

/** What a listener chooses (see `listener add --filter/--rate/--liveness-url`). */
const choosing = {
  filters: { type: 'array', items: str, description: 'globs on the message name: * one segment, > the rest' },
  rate: { ...str, description: 'N/s or N/m' },
  livenessUrl: { ...str, format: 'uri' },
};

export const listenerAdd: Schema = {
  type: 'object',
  properties: {
    kind: { enum: ['http', 'exec'], description: '"exec" needs the admin scope' },
    queues: { type: 'array', items: str, minItems: 1 },
    name: str,
    url: { ...str, format: 'uri' },
    headers: { type: 'object', additionalProperties: str },
    secret: { ...str, description: 'whsec_… (generated if absent)' },
    cloudevents: { type: 'boolean', description: 'send the CloudEvents binary headers too' },
    command: str,
    shell: { type: 'boolean' },
    cwd: str,
    timeoutMs: int,
    maxAttempts: int,
    retryDelayMs: int,
    concurrency: int,
    from: { oneOf: [{ enum: ['new', 'all'] }, { ...int, description: 'a time, ms since epoch' }] },
    ...choosing,
  },
  required: ['kind', 'queues'],
};

/** PATCH /v1/listeners/{listener}: `null` clears a setting, an absent field leaves it. */
export const listenerUpdate: Schema = {
  type: 'object',
  properties: {
    filters: { type: ['array', 'null'], items: str },
    rate: { type: ['string', 'null'] },
    livenessUrl: { type: ['string', 'null'], format: 'uri' },
  },
};

/** POST /v1/listeners/{listener}/replay: from a time or from a message (included). */
export const listenerReplay: Schema = {
  type: 'object',
  properties: {
    sinceMs: { ...int, description: 'ms since epoch' },
    messageId: str,
    dryRun: { type: 'boolean', description: 'only count what would go out' },
  },
};

export const replayed: Schema = {
  type: 'object',
  properties: { messages: int, queues: { type: 'array', items: str } },
  required: ['messages', 'queues'],
};

export const listener: Schema = {
  type: 'object',
  properties: {
    id: str,
    name: str,
    kind: { enum: ['http', 'exec', 'stream'] },
    queues: { type: 'array', items: str },
    url: str,
    secret: { ...str, description: 'only in the answer to POST /v1/listeners' },
    state: { enum: ['active', 'paused', 'disabled'] },
    createdAt: { ...str, format: 'date-time' },
    ...choosing,
  },
  required: ['id', 'kind', 'queues', 'state'],
};

export const delivery: Schema = {
  type: 'object',
  properties: {
    id: str,
    listenerId: str,
    listenerName: str,
    queue: str,
    messageId: str,
    state: { enum: ['pending', 'failed', 'dead', 'delivered'] },
    attempts: { type: 'array', items: { type: 'object' } },
    nextAttemptAt: str,
    updatedAt: str,
  },
  required: ['id', 'listenerId', 'queue', 'messageId', 'state'],
};

export const retry: Schema = {
  type: 'object',
  properties: { id: { ...str, description: 'LISTENER/MESSAGE_ID' }, allDead: { type: 'boolean' }, listener: str },
};
