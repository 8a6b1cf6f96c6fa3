/**
 * What `discue daemon start` asks before it spawns a daemon in the
 * background (which could only say so in its log): can this build run the
 * store? A module of its own, so the CLI gets the answer from the backend's
 * choice point without loading the daemon (server.ts, LevelDB): that load
 * was most of the CLI's CPU before the spawn.
 */
export { assertStoreSupported } from '../backend/index.js';
