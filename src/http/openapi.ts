/** The OpenAPI 3.1 document of the HTTP API, built from the route table itself (routes.ts). */
import { HTTP_STATUS } from '../protocol/errors.js';
import { VERSION } from '../version.js';
import type { Route } from './routes.js';
import * as S from './schemas.js';

const REASONS: Record<number, string> = {
  400: 'bad input (INVALID_ARGUMENT, INVALID_JSON, INVALID_MESSAGE, …)',
  401: 'no token, or not a valid one (UNAUTHORIZED)',
  403: 'the token lacks the scope (FORBIDDEN)',
  404: 'not found (QUEUE_NOT_FOUND, MESSAGE_NOT_FOUND, LISTENER_NOT_FOUND, …)',
  409: 'conflict (QUEUE_EXISTS, QUEUE_NOT_EMPTY, LISTENER_EXISTS)',
  413: 'too large (MESSAGE_TOO_LARGE)',
  415: 'unsupported Content-Type (UNSUPPORTED_MEDIA_TYPE)',
  422: 'refused by the queue’s schema (SCHEMA_VIOLATION, DATA_NOT_JSON)',
  429: 'busy (BUSY)',
  503: 'shutting down (SHUTTING_DOWN)',
};

export function openApiDocument(routes: Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const parameters = [
      ...[...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } })),
      ...(route.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, schema: q.schema, description: q.description })),
    ];
    const errors = new Set<number>([400, ...route.errors, 503]);
    if (route.scope !== null) {
      errors.add(401);
      errors.add(403);
    }
    const responses: Record<string, unknown> = {
      [String(route.response.status)]: {
        description: route.summary,
        content: { [route.response.contentType ?? 'application/json']: { schema: route.response.schema } },
      },
    };
    for (const status of [...errors].sort()) {
      responses[String(status)] = { description: REASONS[status] ?? 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    const operation: Record<string, unknown> = {
      operationId: `${route.method.toLowerCase()}${route.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: route.summary,
      security: route.scope === null ? [] : [{ bearer: [] }],
      responses,
    };
    if (route.scope !== null) operation['x-discue-scope'] = route.scope;
    if (parameters.length > 0) operation.parameters = parameters;
    if (route.body) {
      operation.requestBody = {
        required: route.body.required,
        content: Object.fromEntries((route.body.contentTypes ?? ['application/json']).map((type) => [type, { schema: route.body!.schema }])),
      };
    }
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'discue HTTP API',
      version: VERSION,
      description: `Errors are {"error":{"code","message"}} with the CLI's stable codes; ${Object.keys(HTTP_STATUS).length} codes, each with one HTTP status.`,
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: { Error: S.error },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token from `discue token create` (dq_…)' } },
    },
  };
}

/** GET /openapi.json: the document of every route, this one included (built once the table is complete). */
export function documentRoute(document: () => unknown): Route {
  return {
    method: 'GET',
    path: '/openapi.json',
    summary: 'This document (OpenAPI 3.1)',
    scope: null,
    response: { status: 200, schema: { type: 'object' } },
    errors: [],
    handle: async () => ({ status: 200, body: document() }),
  };
}
