import { describe, expect, it } from 'vitest';
import { plural, table } from '../../src/cli/format.js';

describe('table', () => {
  const headers = ['ID', 'NAME', 'LAST ERROR'];
  const rows = [['l_a1b2c3d4', 'mailer', 'Command failed with ENOENT: notify.sh\nspawn notify.sh ENOENT']];

  it('folds newlines: one row per line, values whole without a width (piped)', () => {
    const text = table(headers, rows, undefined);
    expect(text.split('\n')).toHaveLength(2);
    expect(text).toContain('Command failed with ENOENT: notify.sh spawn notify.sh ENOENT');
  });

  it('fits a width by cutting the prose column with …, keeping ids and names whole', () => {
    const text = table(headers, rows, 40);
    const lines = text.split('\n');
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(40);
    expect(lines[1]).toMatch(/^l_a1b2c3d4  mailer  Command failed with…$/);
  });

  it('shrinks other columns only when the prose ones are at their floor, and stops at the headers', () => {
    const lines = table(['ID', 'DATA'], [['01M8DK0YMQA304GWEX5PX128G5', 'a b']], 20).split('\n');
    expect(lines[1]).toBe('01M8DK0YMQA30…  a b');
    // Narrower than the headers allow: the headers stay whole, the terminal wraps.
    expect(table(['IDENTIFIER', 'DATA'], [['x', 'y']], 5).split('\n')[0]).toBe('IDENTIFIER  DATA');
  });

  it('cuts a coloured cell by its visible width', () => {
    const red = (s: string) => `\x1b[31m${s}\x1b[39m`;
    const lines = table(['STATE', 'X'], [[red('disabled because of everything'), 'y']], 16).split('\n');
    expect(lines[1]).toBe('disabled bec…  y');
  });
});

describe('plural', () => {
  it('says 1 message and 0 or 2 messages, never message(s)', () => {
    expect([plural(0, 'message'), plural(1, 'message'), plural(2, 'listener')]).toEqual(['0 messages', '1 message', '2 listeners']);
  });
});
