/**
 * The worker thread that checks message data against queue schemas (see
 * schemas.ts): whatever a schema's patterns do here, the daemon's thread goes
 * on serving, and can end this one.
 */
import { parentPort } from 'node:worker_threads';
import type { ValidateFunction } from 'ajv';
import { DiscueError } from '../protocol/errors.js';
import type { SchemaJob, SchemaJobResult } from './schemas.js';
import { checkData, compileSchema } from './schemas.js';

/** Compiled schemas by their JSON text; a schema changed by `queue update` is a new entry. */
const validators = new Map<string, ValidateFunction>();
const MAX_CACHED = 256;

async function validatorFor(text: string): Promise<ValidateFunction> {
  let validate = validators.get(text);
  if (validate === undefined) {
    validate = await compileSchema(JSON.parse(text) as unknown);
    if (validators.size >= MAX_CACHED) validators.clear();
    validators.set(text, validate);
  }
  return validate;
}

// Batches in order, each answered as soon as it is checked: the daemon times each one.
parentPort!.on('message', (jobs: SchemaJob[]) => {
  void (async () => {
    for (const job of jobs) parentPort!.postMessage(await run(job));
  })();
});

async function run({ job, schema, datas }: SchemaJob): Promise<SchemaJobResult> {
  let index = 0;
  try {
    const validate = await validatorFor(schema);
    for (; index < datas.length; index++) {
      checkData(validate, datas[index]!, datas.length === 1 ? 'message' : `message ${index + 1}`);
    }
    return { job };
  } catch (err) {
    const error =
      err instanceof DiscueError ? err.toWire() : { code: 'INTERNAL', message: `schema check failed: ${(err as Error).message}` };
    return { job, failure: { index, error } };
  }
}
