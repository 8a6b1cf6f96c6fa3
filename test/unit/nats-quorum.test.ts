/**
 * The NATS connection's quorum verdict (backend/nats/connection.ts): the
 * count of servers says "no quorum" when at most half of the most ever seen
 * are routed; JetStream's meta leader has the last word. Without it a
 * cluster scaled down on purpose was refused until the daemon restarted.
 * A fake client stands in for the servers: its routed servers
 * (connect_urls) and its meta leader's answer are set by each test.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection } from '../../src/backend/nats/connection.js';

class FakeClient {
  info = { connect_urls: ['a:4222', 'b:4222', 'c:4222'] };
  /** What $JS.API.INFO gets: an account (a leader), a 503 (none), or no answer. */
  leader: 'answers' | 'unavailable' | 'silent' = 'answers';
  asked = 0;
  async request(subject: string): Promise<{ json: () => unknown }> {
    if (subject !== '$JS.API.INFO') throw new Error(`unexpected request ${subject}`);
    this.asked++;
    if (this.leader === 'silent') throw Object.assign(new Error('timeout'), { name: 'TimeoutError' });
    const body = this.leader === 'answers' ? { type: 'io.nats.jetstream.api.v1.account_info_response', streams: 0 } : { error: { code: 503, err_code: 10008 } };
    return { json: () => body };
  }
  isClosed(): boolean {
    return false;
  }
  async *status(): AsyncIterable<never> {
    // no status events in these tests
    await new Promise(() => undefined);
  }
}

function open(client: FakeClient): Connection {
  const Ctor = Connection as unknown as new (nc: unknown, servers: string[]) => Connection;
  return new Ctor(client, ['nats://a:4222', 'nats://b:4222', 'nats://c:4222']);
}

describe('NATS quorum', () => {
  // Date only: the verdicts go by Date.now(); the fake's promises need no timers.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  /** Past the time a leader cut off from its peers may still answer. */
  const pastStepDown = () => vi.setSystemTime(Date.now() + 16_000);

  it('in the first 15 s without quorum by the count, the meta leader is not asked: a leader cut off from its peers still answers', async () => {
    const client = new FakeClient();
    const conn = open(client);
    client.info.connect_urls = ['a:4222'];
    client.leader = 'answers';
    await expect(conn.request('publish', async () => 'stored')).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    await expect(conn.ready('list queues')).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect(client.asked).toBe(0);
  });

  it('two of three servers gone and no meta leader: refused with BACKEND_UNAVAILABLE, nothing sent', async () => {
    const client = new FakeClient();
    const conn = open(client);
    client.info.connect_urls = ['a:4222'];
    client.leader = 'unavailable';
    let sent = 0;
    const err = await conn.request('publish', async () => ++sent).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect((err as Error).message).toContain('only 1 of the cluster');
    expect(sent).toBe(0);
    client.leader = 'silent';
    await expect(conn.ready('list queues')).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
  });

  it('asks the meta leader once for the commands that come within its verdict, not once each', async () => {
    const client = new FakeClient();
    const conn = open(client);
    client.info.connect_urls = ['a:4222'];
    client.leader = 'silent';
    expect(conn.quorumLost()).toBe(true);
    pastStepDown();
    const all = await Promise.allSettled([1, 2, 3].map(() => conn.request('publish', async () => 1)));
    expect(all.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    await expect(conn.ready('list queues')).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect(client.asked).toBe(1);
  });

  it('a cluster scaled down (the meta leader answers for one server): requests go through, and the count starts from its new size', async () => {
    const client = new FakeClient();
    const conn = open(client);
    expect(conn.quorumLost()).toBe(false);
    client.info.connect_urls = ['a:4222'];
    expect(conn.quorumLost()).toBe(true);
    client.leader = 'answers';
    pastStepDown();
    expect(await conn.request('publish', async () => 'stored')).toBe('stored');
    expect(conn.quorumLost()).toBe(false);
    expect(client.asked).toBe(1);
    // Grown again, then half gone: the count judges from the larger size once more.
    client.info.connect_urls = ['a:4222', 'b:4222'];
    expect(conn.quorumLost()).toBe(false);
    client.info.connect_urls = ['a:4222'];
    expect(conn.quorumLost()).toBe(true);
    client.leader = 'unavailable';
    pastStepDown();
    await expect(conn.request('publish', async () => 'stored')).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
  });
});
