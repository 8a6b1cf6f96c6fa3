import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPublisher } from '../../src/backend/nats/publisher.js';

/** A connection whose publishes go nowhere: no ack ever comes (lost with a server). */
function silentConnection(): NatsConnection {
  return {
    subscribe: () => ({ unsubscribe: () => undefined }),
    publish: () => undefined,
  } as unknown as NatsConnection;
}

describe('AckPublisher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('times out a publish whose ack is lost after its timeout, even if the wall clock steps back meanwhile', async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
    const publisher = new AckPublisher(silentConnection(), 1_000);
    const outcome = publisher.publish('s', 'data', 'id').then(
      () => 'acked',
      (err: Error) => err.message,
    );
    // NTP steps the clock back an hour: the timeout is a duration, not a wall-clock time.
    vi.setSystemTime(Date.UTC(2025, 11, 31, 23));
    await vi.advanceTimersByTimeAsync(1_500);
    let settled: string | undefined;
    void outcome.then((s) => (settled = s));
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toMatch(/timed out after 1000 ms/);
    publisher.close();
  });
});
