/**
 * The daemon's log: one line per event on stderr, which the auto-start
 * points at DISCUE_HOME/daemon.log. The daemon never prints for a human.
 *
 * A log that cannot be written (its disk is full) must never take the daemon
 * down: lines are dropped while writing fails, and the first line that gets
 * through again says how many were lost and why.
 */
import { fstatSync, writeSync } from 'node:fs';

export type Level = 'info' | 'warn' | 'error';

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Writes one line; throws if it could not. */
export type LineWriter = (line: string) => void;

export function createLogger(write: LineWriter = stderrWriter()): Logger {
  let dropped = 0;
  let reason = '';
  const format = (level: Level, message: string, fields?: Record<string, unknown>): string => {
    let line = `${new Date().toISOString()} ${level.padEnd(5)} ${message}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        const text = typeof value === 'string' ? value : value instanceof Error ? value.message : JSON.stringify(value);
        line += ` ${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
      }
    }
    return line + '\n';
  };
  const emit = (level: Level, message: string, fields?: Record<string, unknown>): void => {
    try {
      if (dropped > 0) {
        write(format('warn', `${dropped} log line(s) were dropped while the log could not be written`, { error: reason }));
        dropped = 0;
      }
      write(format(level, message, fields));
    } catch (err) {
      dropped++;
      reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    }
  };
  return {
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/**
 * stderr, written so a failure is seen and survived. A file (the
 * auto-started daemon's log) is written with writeSync on fd 2: the stream
 * Node wraps around a file emits 'error' on ENOSPC (which, unhandled, ended
 * the daemon) and is destroyed by it, so it would stay silent even once
 * space is free. Pipes and terminals keep the stream, with its errors handled.
 */
export function stderrWriter(): LineWriter {
  // Anything else written to stderr (a failure at exit) must not crash either.
  process.stderr.on('error', () => undefined);
  let file = false;
  try {
    file = fstatSync(2).isFile();
  } catch {
    // no fd 2: the stream path below drops lines quietly
  }
  if (!file) return (line) => void process.stderr.write(line);
  return (line) => {
    const bytes = Buffer.from(line);
    let at = 0;
    while (at < bytes.length) at += writeSync(2, bytes, at);
  };
}
