/**
 * `--fields a,b,c`: the fields a list prints, in that order, for human and
 * JSON output alike, so a script needs no jq to pick them.
 */
import { DiscueError } from '../protocol/errors.js';
import { didYouMean } from '../protocol/suggest.js';

export function parseFields(text: string, known: readonly string[]): string[] {
  const fields = text.split(',').map((f) => f.trim()).filter((f) => f !== '');
  if (fields.length === 0) throw new DiscueError('INVALID_ARGUMENT', `--fields takes a comma-separated list of: ${known.join(', ')}`);
  for (const field of fields) {
    if (!known.includes(field)) {
      throw new DiscueError('INVALID_ARGUMENT', `--fields takes ${known.join(', ')}; unknown field "${field}"${didYouMean(field, known)}`);
    }
  }
  return fields;
}

/** The chosen fields of a value, in the chosen order; a field the value lacks is left out, as JSON.stringify would. */
export function pick(value: object, fields: readonly string[]): Record<string, unknown> {
  const record = value as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  for (const field of fields) if (record[field] !== undefined) picked[field] = record[field];
  return picked;
}
