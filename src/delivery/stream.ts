/**
 * Delivery to a foreground `discue listen`: each message goes down the
 * client's connection as an event, and counts as delivered when the client
 * acknowledges it (after printing it, or after its --exec command ran). If
 * the client disconnects, unacknowledged messages are simply not settled:
 * a named listen gets them again when it comes back.
 */
import type { Envelope, StreamEvent } from '../protocol/wire.js';
import type { SendResult, Sender } from './types.js';

export interface StreamEndpoint {
  emit(event: StreamEvent): void;
}

/** The client connection a stream listener is attached to, shared by its workers (one per queue). */
export class StreamConnection {
  private endpoint: StreamEndpoint | undefined;
  private nextTag = 1;
  private readonly pending = new Map<number, (result: SendResult) => void>();

  get attached(): boolean {
    return this.endpoint !== undefined;
  }

  attach(endpoint: StreamEndpoint): void {
    this.endpoint = endpoint;
  }

  detach(): void {
    this.endpoint = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const resolve of pending) resolve({ ok: false, interrupted: true });
  }

  ack(tag: number): boolean {
    const resolve = this.pending.get(tag);
    if (!resolve) return false;
    this.pending.delete(tag);
    resolve({ ok: true });
    return true;
  }

  send(message: Envelope): Promise<SendResult> {
    const endpoint = this.endpoint;
    if (!endpoint) return Promise.resolve({ ok: false, interrupted: true });
    const tag = this.nextTag++;
    return new Promise((resolve) => {
      this.pending.set(tag, resolve);
      endpoint.emit({ tag, message });
    });
  }
}

export class StreamSender implements Sender {
  constructor(private readonly connection: StreamConnection) {}

  send(message: Envelope, _attempt: number, signal: AbortSignal): Promise<SendResult> {
    if (signal.aborted) return Promise.resolve({ ok: false, interrupted: true });
    return new Promise((resolve) => {
      const onAbort = () => resolve({ ok: false, interrupted: true });
      signal.addEventListener('abort', onAbort, { once: true });
      void this.connection.send(message).then((result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      });
    });
  }
}
