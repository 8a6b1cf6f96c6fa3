import type { Sender } from './types.js';

/**
 * Sends envelopes under their queue's name as the catalogue has it now.
 * Envelopes held in memory (a worker's buffer of fresh appends, a delivery
 * waiting out its backoff) carry the name they were read under; after a
 * `queue rename` they go out under the new one. Copies only then.
 */
export function underCurrentName(sender: Sender, currentName: () => string | undefined): Sender {
  return {
    send(message, attempt, signal) {
      const name = currentName();
      return sender.send(name === undefined || name === message.queue ? message : { ...message, queue: name }, attempt, signal);
    },
  };
}
