/**
 * The daemon's log: one line per event on stderr, which the auto-start
 * points at DISCUE_HOME/daemon.log. The daemon never prints for a human.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function createLogger(write: (line: string) => void = (line) => process.stderr.write(line), debug = false): Logger {
  const emit = (level: Level, message: string, fields?: Record<string, unknown>): void => {
    let line = `${new Date().toISOString()} ${level.padEnd(5)} ${message}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined) continue;
        const text = typeof value === 'string' ? value : value instanceof Error ? value.message : JSON.stringify(value);
        line += ` ${key}=${/[\s"=]/.test(text) ? JSON.stringify(text) : text}`;
      }
    }
    write(line + '\n');
  };
  return {
    debug: (m, f) => {
      if (debug) emit('debug', m, f);
    },
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
