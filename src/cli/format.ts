/** Plain-text tables and values for human output. */

/**
 * Columns padded to line up. A cell is always one line (newlines and tabs
 * fold to spaces: a multi-line error must not break the rows). With a width
 * (a terminal's columns) the widest columns shrink until the row fits and
 * their cells end in "…"; without one (output piped to a script) every value
 * is printed in full.
 */
export function table(headers: string[], rows: string[][], width: number | undefined = terminalWidth()): string {
  const body = rows.map((r) => r.map(oneLine));
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((r) => visibleLength(r[i] ?? ''))));
  if (width !== undefined) fit(widths, headers, body, width);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => {
        const cell = clip(c, widths[i]!);
        return i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell));
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...body.map(line)].join('\n');
}

/** The columns of the terminal that stdout is, or undefined when it is not one. */
export function terminalWidth(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns || 80 : undefined;
}

const GAP = 2;
/** Narrowest a column shrinks to: its header, and room for a few characters and "…". */
const MIN_COLUMN = 6;

/**
 * Shrinks the widest column, one character at a time, until the row fits in
 * `width`. Columns of prose (cells with spaces: errors, data, commands) go
 * first, so that ids and names, which are copied into the next command, stay
 * whole as long as possible.
 */
function fit(widths: number[], headers: string[], body: string[][], width: number): void {
  for (let i = 0; i < widths.length; i++) widths[i] = Math.min(widths[i]!, Math.max(width, headers[i]!.length));
  let total = widths.reduce((a, b) => a + b, 0) + GAP * (widths.length - 1);
  const prose = widths.map((_, i) => body.some((r) => (r[i] ?? '').includes(' ')));
  for (const eligible of [(i: number) => prose[i]!, () => true]) {
    while (total > width) {
      let widest = -1;
      for (let i = 0; i < widths.length; i++) {
        const floor = Math.max(headers[i]!.length, MIN_COLUMN);
        if (eligible(i) && widths[i]! > floor && (widest === -1 || widths[i]! > widths[widest]!)) widest = i;
      }
      if (widest === -1) break; // every eligible column at its floor
      widths[widest]!--;
      total--;
    }
  }
  // Still too wide with every column at its floor: the terminal wraps what is left.
}

function oneLine(text: string): string {
  return text.replace(/[ \t]*[\r\n\t][\s]*/g, ' ');
}

/** The cell cut to `width` visible characters, ending in "…" if it was longer. */
function clip(text: string, width: number): string {
  if (visibleLength(text) <= width) return text;
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  // By code points, so that no emoji is cut in half.
  return Array.from(plain).slice(0, Math.max(0, width - 1)).join('') + '…';
}

function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

export function truncate(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length <= max ? oneLine : oneLine.slice(0, max - 1) + '…';
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const ms = now - Date.parse(iso);
  if (ms < 1000) return 'just now';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts: string[] = [];
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) parts.push(`${d}d`);
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  parts.push(`${s % 60}s`);
  return parts.join(' ');
}

/** "key: value" lines, keys aligned. */
export function fields(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${(k + ':').padEnd(width + 1)} ${v}`).join('\n');
}

/** "1 message", "2 messages": counts read as English, not "message(s)". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
