/**
 * A one-line progress display for long work (a large NDJSON publish): only on
 * a terminal, redrawn at most ten times a second, on stderr so that stdout
 * stays data. Nothing at all when stderr is piped.
 */
export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(count: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.stream.write(`\r\x1b[2K${this.line(count, now)}`);
    this.drawn = true;
  }

  /** Ends the line with the final count and rate. */
  finish(count: number): void {
    if (!this.enabled || !this.drawn) return;
    this.stream.write(`\r\x1b[2K${this.line(count, Date.now())}\n`);
  }

  /** Removes the line (before an error message, or before other output); `redraw` lets the next update draw at once. */
  clear(redraw = false): void {
    if (this.enabled && this.drawn) this.stream.write('\r\x1b[2K');
    if (redraw) this.lastDraw = 0;
  }

  private line(count: number, now: number): string {
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    return `${this.label} ${count.toLocaleString('en-US')} messages · ${Math.round(count / seconds).toLocaleString('en-US')}/s · ${seconds.toFixed(1)}s`;
  }
}
