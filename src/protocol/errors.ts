/**
 * Stable error codes: the contract between daemon, client, CLI and scripts.
 * Messages may change between versions; codes and their exit codes do not.
 * (Same idea as abstract-level's LEVEL_* codes.)
 */

export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  NOT_FOUND: 4,
  CONFLICT: 5,
  TIMEOUT: 124,
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Every code discue reports, with the process exit code the CLI uses for it. */
export const ERROR_CODES = {
  // Malformed input: the request cannot be understood as given (exit 2).
  USAGE: EXIT.USAGE,
  INVALID_JSON: EXIT.USAGE,
  INVALID_MESSAGE: EXIT.USAGE,
  INVALID_QUEUE_NAME: EXIT.USAGE,
  INVALID_ARGUMENT: EXIT.USAGE,
  INVALID_DURATION: EXIT.USAGE,
  INVALID_SCHEMA: EXIT.USAGE,
  /** A listener's --exec program is missing, or not executable: refused at `listener add`. */
  COMMAND_NOT_FOUND: EXIT.USAGE,
  COMMAND_NOT_EXECUTABLE: EXIT.USAGE,
  // Well-formed but refused by a rule of the queue (exit 1).
  MESSAGE_TOO_LARGE: EXIT.FAILURE,
  SCHEMA_VIOLATION: EXIT.FAILURE,
  DATA_NOT_JSON: EXIT.FAILURE,
  /** Checking data against the schema took too long (a pattern that backtracks). */
  SCHEMA_TIMEOUT: EXIT.FAILURE,
  // Not found (exit 4).
  QUEUE_NOT_FOUND: EXIT.NOT_FOUND,
  MESSAGE_NOT_FOUND: EXIT.NOT_FOUND,
  LISTENER_NOT_FOUND: EXIT.NOT_FOUND,
  DELIVERY_NOT_FOUND: EXIT.NOT_FOUND,
  // Conflicts (exit 5).
  QUEUE_EXISTS: EXIT.CONFLICT,
  QUEUE_NOT_EMPTY: EXIT.CONFLICT,
  LISTENER_EXISTS: EXIT.CONFLICT,
  DATA_DIR_CONFLICT: EXIT.CONFLICT,
  // The daemon cannot be reached or spoken to (exit 3).
  DAEMON_UNREACHABLE: EXIT.UNREACHABLE,
  DAEMON_START_FAILED: EXIT.UNREACHABLE,
  DAEMON_DIED: EXIT.UNREACHABLE,
  PROTOCOL_MISMATCH: EXIT.UNREACHABLE,
  NOT_A_DISCUE_SOCKET: EXIT.UNREACHABLE,
  SOCKET_PERMISSION: EXIT.UNREACHABLE,
  SOCKET_PATH_TOO_LONG: EXIT.UNREACHABLE,
  // The socket or its directory could be another user's: refused, like unreachable.
  SOCKET_UNSAFE: EXIT.UNREACHABLE,
  // The store's servers (a NATS cluster) cannot be reached, or have no quorum: nothing was written.
  BACKEND_UNAVAILABLE: EXIT.UNREACHABLE,
  // Frames on the socket.
  BAD_FRAME: EXIT.FAILURE,
  FRAME_TOO_LARGE: EXIT.FAILURE,
  UNKNOWN_REQUEST: EXIT.FAILURE,
  /** The daemon is already receiving its limit of large requests; retry later. */
  BUSY: EXIT.FAILURE,
  // Environment and internals (exit 1).
  HOME_NOT_WRITABLE: EXIT.FAILURE,
  DATA_DIR_UNSAFE: EXIT.FAILURE,
  ALREADY_RUNNING: EXIT.FAILURE,
  SHUTTING_DOWN: EXIT.UNREACHABLE,
  STORAGE_ERROR: EXIT.FAILURE,
  /** The disk (or quota) holding the data directory is full; reads still work. */
  STORAGE_FULL: EXIT.FAILURE,
  /** The database files cannot be opened safely; `discue daemon repair` may recover them. */
  STORAGE_DAMAGED: EXIT.FAILURE,
  /** A stored record failed its checksum: reported and skipped, never served. */
  DATA_CORRUPT: EXIT.FAILURE,
  /** The store setting names a backend this build cannot run (a nats:// URL before the NATS backend). */
  STORE_UNSUPPORTED: EXIT.FAILURE,
  INTERNAL: EXIT.FAILURE,
  ABORTED: EXIT.FAILURE,
  DELIVERY_FAILED: EXIT.FAILURE,
  TIMEOUT: EXIT.TIMEOUT,
  // The daemon accepted a request (or a connection) and did not answer in time: stopped or stuck.
  DAEMON_TIMEOUT: EXIT.TIMEOUT,
  INTERRUPTED: EXIT.INTERRUPTED,
} as const satisfies Record<string, ExitCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export function exitCodeFor(code: string): ExitCode {
  return isErrorCode(code) ? ERROR_CODES[code] : EXIT.FAILURE;
}

/** What an error looks like on the wire. */
export interface WireError {
  code: string;
  message: string;
  /** Optional structured detail, e.g. schema errors or the line of a batch. */
  details?: unknown;
}

/** An error with a stable code. Thrown on both sides of the socket. */
export class DiscueError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DiscueError';
    this.code = code;
    if (options?.details !== undefined) this.details = options.details;
  }

  get exitCode(): ExitCode {
    return ERROR_CODES[this.code];
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message };
    if (this.details !== undefined) wire.details = this.details;
    return wire;
  }

  static fromWire(wire: WireError): DiscueError {
    const code = isErrorCode(wire.code) ? wire.code : 'INTERNAL';
    return new DiscueError(code, wire.message, { details: wire.details });
  }
}

export function isDiscueError(err: unknown): err is DiscueError {
  return err instanceof DiscueError;
}
