/**
 * The README's reference tables are the user's contract, and they drifted from
 * the code before (codes missing from the exit table, a "..." row, environment
 * variables nobody documented). These tests parse the tables and compare them
 * with the sources of truth: ERROR_CODES/EXIT, every DISCUE_* name in src/,
 * and CONFIG_KEYS.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_KEYS } from '../../src/cli/config.js';
import { manPage } from '../../src/cli/manpage.js';
import { buildProgram } from '../../src/cli/program.js';
import { ERROR_CODES, EXIT } from '../../src/protocol/errors.js';
import { ROOT } from '../helpers/sandbox.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The body of the `## heading` section, up to the next `## `. */
function section(text: string, heading: string): string {
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The cells of every row of the markdown tables in text, header and separator rows left out. */
function tableRows(text: string): string[][] {
  const rows = text
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .replace(/^\|/, '')
        .replace(/\|\s*$/, '')
        .split('|')
        .map((cell) => cell.trim()),
    );
  return rows.filter((cells) => !cells.every((c) => /^-+$/.test(c)));
}

/** Backticked identifiers that look like error codes or variables: `QUEUE_NOT_FOUND`, `DISCUE_HOME`. */
function upperTokens(cell: string): string[] {
  return [...cell.matchAll(/`([A-Z][A-Z0-9_]*[A-Z0-9])`/g)].map((m) => m[1]!);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

describe('README "Exit codes and error codes" table', () => {
  const rows = tableRows(section(README, 'Exit codes and error codes')).filter((cells) => /^\d+$/.test(cells[0]!));
  const byExit = new Map(rows.map((cells) => [Number(cells[0]), upperTokens(cells[2] ?? '')]));

  it('the parser reads rows, codes and skips the header and separator', () => {
    const parsed = tableRows('| exit | meaning | error codes |\n|---|---|---|\n| 4 | not found | `QUEUE_NOT_FOUND` (a `--queue`), `X_Y` |\n');
    expect(parsed).toEqual([
      ['exit', 'meaning', 'error codes'],
      ['4', 'not found', '`QUEUE_NOT_FOUND` (a `--queue`), `X_Y`'],
    ]);
    expect(upperTokens(parsed[1]![2]!)).toEqual(['QUEUE_NOT_FOUND', 'X_Y']);
  });

  it('has one row for each exit code of EXIT, and no other', () => {
    expect(rows.map((cells) => Number(cells[0])).sort((a, b) => a - b)).toEqual([...Object.values(EXIT)].sort((a, b) => a - b));
    for (const cells of rows) expect(cells[1], `meaning of exit ${cells[0]}`).not.toBe('');
  });

  it('lists every error code in the row of its exit code', () => {
    for (const [code, exit] of Object.entries(ERROR_CODES)) {
      const rowsWithIt = [...byExit].filter(([, codes]) => codes.includes(code)).map(([e]) => e);
      expect(rowsWithIt, `${code} (exit ${exit} in src/protocol/errors.ts)`).toEqual([exit]);
    }
  });

  it('names no code that src/protocol/errors.ts does not have, and leaves nothing to "..."', () => {
    for (const [exit, codes] of byExit) {
      for (const code of codes) expect(Object.hasOwn(ERROR_CODES, code), `${code} in the row of exit ${exit}`).toBe(true);
    }
    for (const cells of rows) expect(cells[2] ?? '', `row of exit ${cells[0]}`).not.toMatch(/\.\.\.|…/);
  });
});

describe('README "Environment and configuration"', () => {
  const text = section(README, 'Environment and configuration');
  const [envTable, keyTable] = text.split('`discue config set KEY VALUE`').map((part) => tableRows(part));
  const documentedEnv = new Set(envTable!.flatMap((cells) => upperTokens(cells[0] ?? '')));

  it('documents every DISCUE_* variable that the code reads or sets', () => {
    const inSource = new Set<string>();
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/\bDISCUE_[A-Z][A-Z0-9_]*[A-Z0-9]\b/g)) inSource.add(m[0]);
    }
    // Guards the scan itself: these are certainly in src/.
    expect(inSource).toContain('DISCUE_HOME');
    expect(inSource).toContain('DISCUE_REQUEST_TIMEOUT');
    for (const name of inSource) expect(documentedEnv.has(name), `${name} is in src/ but not in the README's environment table`).toBe(true);
  });

  it('documents the other variables the code reads', () => {
    for (const name of ['NO_COLOR', 'XDG_CONFIG_HOME', 'TMPDIR']) expect(documentedEnv.has(name), name).toBe(true);
  });

  it('documents every config key, with its variable and its default', () => {
    const keys = new Map(keyTable!.map((cells) => [cells[0]!.replace(/`/g, ''), cells]));
    for (const key of CONFIG_KEYS) {
      const row = keys.get(key.key);
      expect(row, `config key ${key.key}`).toBeDefined();
      expect(row![2], `default of ${key.key}`).toBe(`\`${key.default}\``);
      expect(documentedEnv.has(key.env), key.env).toBe(true);
    }
    expect(keys.size - 1, 'rows besides the header').toBe(CONFIG_KEYS.length);
  });
});

describe('man page ENVIRONMENT', () => {
  it('names every variable a user sets: the config keys\' and the daemon\'s knobs', () => {
    const page = manPage(buildProgram());
    const environment = page.slice(page.indexOf('.SH ENVIRONMENT'), page.indexOf('.SH FILES'));
    const names = ['DISCUE_HOME', 'DISCUE_SOCKET', 'NO_COLOR', 'XDG_CONFIG_HOME', 'TMPDIR', 'DISCUE_REQUEST_TIMEOUT', 'DISCUE_DEDUPE_WINDOW', 'DISCUE_DEDUPE_MAX_KEYS'];
    for (const name of [...names, ...CONFIG_KEYS.map((k) => k.env)]) expect(environment, name).toContain(`.B ${name}\n`);
  });
});
