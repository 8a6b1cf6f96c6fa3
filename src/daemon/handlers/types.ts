/**
 * What every request handler is given: the daemon's parts, and what it knows
 * of the request it serves. Each handler checks its params (they come from
 * the socket), calls the engine or the backend contract, and returns the
 * result; the connection turns thrown DiscueErrors into error replies.
 */
import type { DaemonStatus } from '../../protocol/wire.js';
import type { RequestType } from '../../protocol/requests.js';
import type { DeliveryEngine } from '../../delivery/engine.js';
import type { Stream } from '../../delivery/streams.js';
import type { Store } from '../../backend/types.js';
import type { SchemaRegistry } from '../schemas.js';
import type { TokenStore } from '../tokens.js';

export interface HandlerContext {
  store: Store;
  engine: DeliveryEngine;
  schemas: SchemaRegistry;
  tokens: TokenStore;
  status(): DaemonStatus;
  shutdown(reason: string): void;
}

/** What a handler knows of the request it serves (streams need it). */
export interface RequestContext {
  id: number;
  /** Sends an event frame for this request (streams). */
  emit(event: unknown): void;
  /** Runs when the connection closes or the daemon starts shutting down. */
  onClose(callback: () => void): void;
  /** The streams on this connection, by request id, so their acks reach them. */
  streams: Map<number, Stream>;
}

export type Handler = (params: unknown, ctx: HandlerContext, req: RequestContext) => Promise<unknown>;

/** Request types a handler serves; the connection itself answers `hello` and `listen.ack`. */
export type HandledType = Exclude<RequestType, 'hello' | 'listen.ack'>;
export type HandlerMap = Record<HandledType, Handler>;
