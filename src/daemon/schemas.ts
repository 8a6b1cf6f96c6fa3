/**
 * JSON Schema checks for queues that carry one. Ajv is loaded only when the
 * first schema is compiled, so a broker without schemas never pays for it.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { DiscueError } from '../protocol/errors.js';

type AjvInstance = { compile(schema: object): ValidateFunction };

let ajvPromise: Promise<AjvInstance> | undefined;

async function ajv(): Promise<AjvInstance> {
  ajvPromise ??= import('ajv').then((mod) => {
    // ajv ships CommonJS; its default export arrives under `default` from ESM.
    const Ajv = (mod.default as unknown as { default?: unknown }).default ?? mod.default;
    return new (Ajv as new (opts: object) => AjvInstance)({ allErrors: true, strict: false });
  });
  return ajvPromise;
}

export class SchemaRegistry {
  private readonly compiled = new Map<string, { schema: object; validate: ValidateFunction }>();

  /** Compiles a schema, throwing INVALID_SCHEMA if Ajv refuses it. */
  async compile(schema: unknown): Promise<ValidateFunction> {
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      if (typeof schema !== 'boolean') throw new DiscueError('INVALID_SCHEMA', 'a JSON Schema must be an object or a boolean');
    }
    try {
      return (await ajv()).compile(schema as object);
    } catch (err) {
      throw new DiscueError('INVALID_SCHEMA', `invalid JSON Schema: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The validator for a queue's current schema, compiled once per schema object. */
  async forQueue(queue: string, schema: object): Promise<ValidateFunction> {
    const hit = this.compiled.get(queue);
    if (hit && hit.schema === schema) return hit.validate;
    const validate = await this.compile(schema);
    this.compiled.set(queue, { schema, validate });
    return validate;
  }

  forget(queue: string): void {
    this.compiled.delete(queue);
  }
}

/** Checks that `data` is JSON and satisfies the schema; `where` names the message in a batch. */
export function checkData(validate: ValidateFunction, data: string, where: string): void {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new DiscueError('DATA_NOT_JSON', `${where}: this queue has a schema, so "data" must be a JSON text`);
  }
  if (!validate(value)) {
    const errors = validate.errors ?? [];
    throw new DiscueError('SCHEMA_VIOLATION', `${where}: data does not match the queue's schema: ${formatErrors(errors)}`, {
      details: errors.map((e) => ({ path: e.instancePath || '/', message: e.message ?? 'invalid', keyword: e.keyword })),
    });
  }
}

function formatErrors(errors: ErrorObject[]): string {
  return errors
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
    .join('; ');
}
