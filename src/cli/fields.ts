/**
 * `--fields a,b,c`: the fields a list prints, in that order, for human and
 * JSON output alike, so a script needs no jq to pick them.
 */
import { DiscueError } from '../protocol/errors.js';
import { didYouMean } from '../protocol/suggest.js';

/**
 * columns maps a table's column titles (lower case) that are not field names
 * to the field that holds them: a user picks what the table shows
 * (`--fields name,health`) and is told where it is in the JSON.
 */
export function parseFields(text: string, known: readonly string[], columns: Readonly<Record<string, string>> = {}): string[] {
  const fields = text.split(',').map((f) => f.trim()).filter((f) => f !== '');
  if (fields.length === 0) throw new DiscueError('INVALID_ARGUMENT', `--fields takes a comma-separated list of: ${known.join(', ')}`);
  for (const field of fields) {
    const column = Object.hasOwn(columns, field.toLowerCase()) ? columns[field.toLowerCase()] : undefined;
    if (!known.includes(field) && column !== undefined) {
      throw new DiscueError(
        'INVALID_ARGUMENT',
        `--fields takes the keys of --json, not the table's column titles: ${field.toUpperCase()} comes from ${column}; fields: ${known.join(', ')}`,
      );
    }
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

/**
 * Human output of --fields: a table of the chosen fields with their JSON
 * values (text unquoted, objects as JSON, a missing one as -), headed by the
 * field names; with one field, its values alone, one a line.
 */
export function fieldsTable(rows: object[], fields: readonly string[]): string {
  const cell = (value: unknown): string => {
    if (value === undefined || value === null) return '-';
    return typeof value === 'string' ? value.replace(/\s+/g, ' ') : JSON.stringify(value);
  };
  const cells = rows.map((row) => fields.map((f) => cell((row as Record<string, unknown>)[f])));
  if (fields.length === 1) return cells.map(([value]) => value).join('\n');
  const widths = fields.map((f, i) => Math.max(f.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(fields.map((f) => f.toUpperCase())), ...cells.map(line)].join('\n');
}

/**
 * --fields for a list whose items may grow fields: the names the command
 * documents, and any other a returned item has.
 */
export function listFields(text: string, documented: readonly string[], rows: object[], columns: Readonly<Record<string, string>> = {}): string[] {
  const known = new Set(documented);
  for (const row of rows) for (const key of Object.keys(row)) known.add(key);
  return parseFields(text, [...known], columns);
}
