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
  INVALID_FILTER: EXIT.USAGE,
  /** A command that would send messages again needs --yes when there is no terminal to ask on. */
  CONFIRMATION_REQUIRED: EXIT.USAGE,
  /** A listener's --exec program is missing, or not executable: refused at `listener add`. */
  COMMAND_NOT_FOUND: EXIT.USAGE,
  COMMAND_NOT_EXECUTABLE: EXIT.USAGE,
  /** HTTP API: a body of a Content-Type the route does not take. */
  UNSUPPORTED_MEDIA_TYPE: EXIT.USAGE,
  /** HTTP API: the path exists, but not with this method (the Allow header lists those it takes). */
  METHOD_NOT_ALLOWED: EXIT.USAGE,
  /** HTTP API: no token, or one that is not (or no longer) valid. */
  UNAUTHORIZED: EXIT.FAILURE,
  /** HTTP API: the token's scopes do not cover the request. */
  FORBIDDEN: EXIT.FAILURE,
  /** HTTP API: the request's headers are over Node's limit (16 KiB). */
  HEADERS_TOO_LARGE: EXIT.FAILURE,
  /** HTTP API: headers and body did not arrive within the timeout (a slow client). */
  REQUEST_TIMEOUT: EXIT.FAILURE,
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
  TOKEN_NOT_FOUND: EXIT.NOT_FOUND,
  /** HTTP API: no route at this path. */
  ROUTE_NOT_FOUND: EXIT.NOT_FOUND,
  // Conflicts (exit 5).
  QUEUE_EXISTS: EXIT.CONFLICT,
  QUEUE_NOT_EMPTY: EXIT.CONFLICT,
  LISTENER_EXISTS: EXIT.CONFLICT,
  TOKEN_EXISTS: EXIT.CONFLICT,
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

/**
 * The HTTP status of every code, for the HTTP API (src/http/). Next to the
 * exit codes so a new code cannot be added without both: the socket carries
 * the code, HTTP the code and this status.
 */
export const HTTP_STATUS = {
  USAGE: 400,
  INVALID_JSON: 400,
  INVALID_MESSAGE: 400,
  INVALID_QUEUE_NAME: 400,
  INVALID_ARGUMENT: 400,
  INVALID_DURATION: 400,
  INVALID_SCHEMA: 400,
  INVALID_FILTER: 400,
  CONFIRMATION_REQUIRED: 400,
  COMMAND_NOT_FOUND: 400,
  COMMAND_NOT_EXECUTABLE: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  METHOD_NOT_ALLOWED: 405,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  MESSAGE_TOO_LARGE: 413,
  SCHEMA_VIOLATION: 422,
  DATA_NOT_JSON: 422,
  SCHEMA_TIMEOUT: 422,
  QUEUE_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  LISTENER_NOT_FOUND: 404,
  DELIVERY_NOT_FOUND: 404,
  TOKEN_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  QUEUE_EXISTS: 409,
  QUEUE_NOT_EMPTY: 409,
  LISTENER_EXISTS: 409,
  TOKEN_EXISTS: 409,
  DATA_DIR_CONFLICT: 409,
  DAEMON_UNREACHABLE: 503,
  DAEMON_START_FAILED: 503,
  DAEMON_DIED: 503,
  PROTOCOL_MISMATCH: 503,
  NOT_A_DISCUE_SOCKET: 503,
  SOCKET_PERMISSION: 503,
  SOCKET_PATH_TOO_LONG: 503,
  SOCKET_UNSAFE: 503,
  BAD_FRAME: 400,
  FRAME_TOO_LARGE: 413,
  UNKNOWN_REQUEST: 400,
  BUSY: 429,
  HOME_NOT_WRITABLE: 500,
  DATA_DIR_UNSAFE: 500,
  ALREADY_RUNNING: 409,
  SHUTTING_DOWN: 503,
  BACKEND_UNAVAILABLE: 503,
  STORAGE_ERROR: 500,
  STORAGE_FULL: 507,
  STORAGE_DAMAGED: 500,
  STORE_UNSUPPORTED: 400,
  DATA_CORRUPT: 500,
  INTERNAL: 500,
  ABORTED: 500,
  DELIVERY_FAILED: 502,
  TIMEOUT: 504,
  DAEMON_TIMEOUT: 504,
  INTERRUPTED: 500,
} as const satisfies Record<ErrorCode, number>;

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
/**
 * Marks a DiscueError across copies of this module: the CLI bundle has its
 * own copy, the daemon code it imports from dist/ another, and `instanceof`
 * must hold for an error thrown by one and caught by the other.
 */
const BRAND = Symbol.for('discue.DiscueError');

export class DiscueError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DiscueError';
    this.code = code;
    if (options?.details !== undefined) this.details = options.details;
    Object.defineProperty(this, BRAND, { value: true });
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
