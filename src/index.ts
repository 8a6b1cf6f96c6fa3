/**
 * discue as a library: the same client the CLI uses.
 *
 *   import { connect } from 'discue';
 *   const client = await connect();
 *   await client.publish('orders', { data: 'Order shipped' });
 *   await client.close();
 */
export { connect, DiscueClient } from './client/client.js';
export type { ClientEvents, ConnectOptions, DisconnectedEvent, ReconnectedEvent, ReconnectingEvent } from './client/client.js';
export { startDaemon } from './client/spawn.js';
export { DiscueError, isDiscueError, EXIT, ERROR_CODES, exitCodeFor } from './protocol/errors.js';
export type { ErrorCode, ExitCode, WireError } from './protocol/errors.js';
export { resolvePaths } from './protocol/paths.js';
export type { BrokerPaths } from './protocol/paths.js';
export { validateMessage, parseMessage, validateQueueName, MAX_DATA_BYTES } from './protocol/validate.js';
export type { DaemonStatus, Envelope, MessageInput, PublishResult, QueueInfo } from './protocol/wire.js';
export type { RequestMap, RequestType } from './protocol/requests.js';
export { PROTOCOL_VERSION } from './protocol/frames.js';
export { VERSION } from './version.js';
