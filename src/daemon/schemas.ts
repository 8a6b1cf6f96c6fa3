/**
 * JSON Schema checks for queues that carry one. Ajv is loaded only when the
 * first schema is compiled, so a broker without schemas never pays for it.
 *
 * Data is checked on a worker thread, never on the daemon's own: a `pattern`
 * such as `^(a+)+$` backtracks for hours on a 40-character string, and V8's
 * linear-time fallback does not apply to the "u" flag ajv compiles patterns
 * with (Node 20). A check that overruns its deadline is cut off by
 * terminating the worker, and refused with SCHEMA_TIMEOUT.
 */
import type { Worker } from 'node:worker_threads';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { DiscueError } from '../protocol/errors.js';
import type { WireError } from '../protocol/errors.js';

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

/** Compiles a schema, throwing INVALID_SCHEMA if Ajv refuses it. */
export async function compileSchema(schema: unknown): Promise<ValidateFunction> {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    if (typeof schema !== 'boolean') throw new DiscueError('INVALID_SCHEMA', 'a JSON Schema must be an object or a boolean');
  }
  try {
    return (await ajv()).compile(schema as object);
  } catch (err) {
    throw new DiscueError('INVALID_SCHEMA', `invalid JSON Schema: ${(err as Error).message}`, { cause: err });
  }
}

/** A batch for the worker: the schema as JSON text (its cache key there) and each message's data. */
export interface SchemaJob {
  job: number;
  schema: string;
  datas: string[];
}

/** The worker's answer: nothing, or the first message that failed and why. */
export interface SchemaJobResult {
  job: number;
  failure?: { index: number; error: WireError };
}

/**
 * Time one batch may take on the worker. Generous for any honest schema
 * (thousands of messages take milliseconds); short for the daemon's clients,
 * who wait on it.
 */
const CHECK_BASE_MS = 2000;
const CHECK_PER_MESSAGE_MS = 1;

interface Pending {
  job: SchemaJob;
  resolve(result: SchemaJobResult): void;
  reject(err: Error): void;
}

export class SchemaRegistry {
  private readonly texts = new Map<string, { schema: object; text: string }>();
  private worker: Worker | undefined;
  private readonly queue: Pending[] = [];
  private running: { jobs: Pending[]; timer: NodeJS.Timeout } | undefined;
  private nextJob = 1;

  /** Compiles a schema, throwing INVALID_SCHEMA if Ajv refuses it. */
  async compile(schema: unknown): Promise<ValidateFunction> {
    return compileSchema(schema);
  }

  forget(queue: string): void {
    this.texts.delete(queue);
  }

  /**
   * Checks each data of a batch against the queue's schema, off the main
   * thread. Throws the first failure, with `details.index` naming the message.
   */
  async check(queue: string, schema: object, datas: string[]): Promise<void> {
    let entry = this.texts.get(queue);
    if (entry === undefined || entry.schema !== schema) {
      entry = { schema, text: JSON.stringify(schema) };
      this.texts.set(queue, entry);
    }
    const result = await new Promise<SchemaJobResult>((resolve, reject) => {
      this.queue.push({ job: { job: this.nextJob++, schema: entry.text, datas }, resolve, reject });
      this.runNext();
    });
    if (result.failure) {
      const { index, error } = result.failure;
      const details = error.details === undefined ? { index } : { index, errors: error.details };
      throw new DiscueError(DiscueError.fromWire(error).code, error.message, { details });
    }
  }

  /**
   * Sends every waiting batch to the worker in one message (one round trip
   * for many publishes in flight); the worker answers each batch as it
   * finishes it. Each batch has its own deadline, started when the one before
   * it is answered, so a slow batch is told apart from those queued behind it.
   */
  private runNext(): void {
    if (this.running !== undefined || this.queue.length === 0) return;
    const jobs = this.queue.splice(0, this.queue.length);
    const worker = this.startWorker();
    this.running = { jobs, timer: this.deadlineFor(worker, jobs[0]!) };
    worker.postMessage(jobs.map((p) => p.job));
  }

  private deadlineFor(worker: Worker, pending: Pending): NodeJS.Timeout {
    const deadline = CHECK_BASE_MS + CHECK_PER_MESSAGE_MS * pending.job.datas.length;
    return setTimeout(() => {
      // The only way to stop a regular expression that backtracks: end its thread.
      const running = this.running!;
      this.running = undefined;
      this.worker = undefined;
      void worker.terminate();
      pending.reject(
        new DiscueError(
          'SCHEMA_TIMEOUT',
          `checking the data against the queue's schema took longer than ${deadline} ms and was stopped; ` +
            'a "pattern" with nested repetition such as (a+)+ can take exponential time: simplify it with `discue queue update`',
        ),
      );
      // The batches behind it never started: they go first on a new worker.
      this.queue.unshift(...running.jobs.slice(1));
      this.runNext();
    }, deadline);
  }

  private startWorker(): Worker {
    if (this.worker !== undefined) return this.worker;
    // Loaded on the first schema check, not at daemon start: most brokers have no schema.
    const { Worker } = process.getBuiltinModule('node:worker_threads');
    const worker = new Worker(new URL('./schema-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (result: SchemaJobResult) => {
      const running = this.running;
      if (running === undefined || this.worker !== worker || running.jobs[0]!.job.job !== result.job) return;
      clearTimeout(running.timer);
      const pending = running.jobs.shift()!;
      pending.resolve(result);
      if (running.jobs.length > 0) {
        running.timer = this.deadlineFor(worker, running.jobs[0]!);
        return;
      }
      this.running = undefined;
      this.runNext();
    });
    worker.on('error', (err) => {
      // A crashed worker (out of memory): fail what it held, start afresh for the rest.
      if (this.worker !== worker) return;
      this.worker = undefined;
      const running = this.running;
      this.running = undefined;
      if (running !== undefined) {
        clearTimeout(running.timer);
        for (const pending of running.jobs) pending.reject(err);
      }
      this.runNext();
    });
    this.worker = worker;
    return worker;
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
