/**
 * Listener defaults and limits: the one place the daemon (when a request
 * leaves a field out), the CLI's config keys and its help text read them.
 */

/** How long one delivery attempt may take. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Attempts before a delivery is dead. */
export const DEFAULT_MAX_ATTEMPTS = 10;
/** The most attempts a listener may be given. */
export const MOST_ATTEMPTS = 1000;
/** The first retry's delay; each further one doubles it (see delivery/backoff.ts). */
export const DEFAULT_RETRY_DELAY_MS = 1000;
/** The longest attempt timeout, and the longest first retry delay, a listener may be given. */
export const LONGEST_DURATION_MS = 3_600_000;
/** How long an idempotency key (`publish --key`) is remembered (DISCUE_DEDUPE_WINDOW). */
export const DEDUPE_WINDOW_MS = 10 * 60_000;
/** Idempotency keys kept per queue; past it the oldest are forgotten first (DISCUE_DEDUPE_MAX_KEYS). */
export const DEDUPE_MAX_KEYS = 100_000;
/** Delivered records kept per listener for `deliveries list` (failed and dead ones are kept until settled). */
export const HISTORY_KEEP = 1000;
/** The longest wait between two attempts of one delivery (`--retry-delay` doubles up to it). */
export const MAX_BACKOFF_MS = 10 * 60_000;
/** Deliveries one listener has in flight unless told otherwise: one, in order. */
export const DEFAULT_CONCURRENCY = 1;
/** Deliveries one listener may have in flight at once. */
export const MAX_CONCURRENCY = 64;
/** One liveness check (GET the listener's liveness URL) may take this long. */
export const LIVENESS_TIMEOUT_MS = 2000;
/** Liveness checks of a receiver that is down start this far apart, doubling… */
export const LIVENESS_FIRST_BACKOFF_MS = 250;
/** …up to this. */
export const LIVENESS_MAX_BACKOFF_MS = 10_000;
