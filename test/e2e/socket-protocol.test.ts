/**
 * Abuse of the socket protocol with raw connections to a running daemon:
 * each bad client is answered with an error frame and disconnected, and the
 * daemon (same pid) and every other client go on.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { RawClient, listAll, ok, statusPid } from '../helpers/discue.js';
import { useSandbox } from '../helpers/sandbox.js';

interface ErrorFrame {
  id: number;
  ok: false;
  error: { code: string; message: string };
}

describe('socket protocol abuse', () => {
  const sb = useSandbox();
  let pid: number;
  let published: string[];

  beforeEach(async () => {
    await ok(sb, ['queue', 'create', 'q']);
    pid = sb.daemonPid()!;
    published = [];
  });

  /** Another client, through the CLI: publishes and lists; the daemon is the same process. */
  async function othersStillServed(): Promise<void> {
    const data = `still fine ${published.length}`;
    published.push(data);
    await ok(sb, ['publish', 'q', '--data', data]);
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(published);
    expect(await statusPid(sb)).toBe(pid);
  }

  it('disconnects a client that sends garbage, with BAD_FRAME', async () => {
    const raw = await RawClient.connect(sb.socket);
    raw.socket.write('\x00\xffgarbage{{{\n');
    await raw.waitClosed();
    expect(raw.frames).toMatchObject([{ id: 0, ok: false, error: { code: 'BAD_FRAME' } }]);
    await othersStillServed();

    // After a good handshake too: a frame that is JSON but not a request.
    const greeted = await RawClient.greeted(sb.socket);
    greeted.socket.write('[1,2,3]\n');
    await greeted.waitClosed();
    expect(greeted.frames.at(-1)).toMatchObject({ id: 0, ok: false, error: { code: 'BAD_FRAME' } });
    await othersStillServed();
  });

  it('disconnects a client whose first frame is not the handshake, without acting on it', async () => {
    const raw = await RawClient.connect(sb.socket);
    raw.send({ id: 1, type: 'publish', params: { queue: 'q', messages: [{ data: 'sneaky' }] } });
    await raw.waitClosed();
    const frames = raw.frames as unknown as ErrorFrame[];
    expect(frames).toHaveLength(1);
    expect(frames[0]!.ok).toBe(false);
    expect(frames[0]!.error.code).toBe('BAD_FRAME');
    expect(frames[0]!.error.message).toContain('hello');
    await othersStillServed();
  });

  it('shrugs off half a frame followed by a close, and does not act on it', async () => {
    const raw = await RawClient.greeted(sb.socket);
    raw.socket.write('{"id":2,"type":"publish","params":{"queue":"q","messages":[{"data":"half');
    raw.socket.end();
    await raw.waitClosed();
    expect(raw.frames.filter((f) => f.id === 2)).toEqual([]);
    await othersStillServed();
  });

  it('cuts off a 100 MB line with FRAME_TOO_LARGE before it has all been sent', async () => {
    const raw = await RawClient.greeted(sb.socket);
    const chunk = Buffer.alloc(1024 * 1024, 'a'.charCodeAt(0));
    chunk.write('{"id":2,"type":"publish","params":{"data":"');
    let sent = 0;
    while (sent < 100 && !raw.closed && !raw.socket.destroyed && raw.error === undefined) {
      const flushed = raw.socket.write(chunk);
      sent++;
      if (!flushed) {
        await new Promise<void>((resolve) => {
          const done = () => {
            raw.socket.off('drain', done);
            raw.socket.off('close', done);
            resolve();
          };
          raw.socket.once('drain', done);
          raw.socket.once('close', done);
        });
      }
    }
    await raw.waitClosed();
    expect(raw.frames.at(-1)).toMatchObject({ id: 0, ok: false, error: { code: 'FRAME_TOO_LARGE' } });
    // The daemon hung up long before 100 MB arrived (its limit is 16 MiB).
    expect(sent).toBeLessThan(100);
    await othersStillServed();
  });

  it('answers an unknown request type with UNKNOWN_REQUEST and keeps the connection usable', async () => {
    const raw = await RawClient.greeted(sb.socket);
    raw.send({ id: 2, type: 'no.such.thing', params: {} });
    expect(await raw.frame(2)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_REQUEST' } });
    // Pipelined requests on the same connection, answered by id.
    raw.send({ id: 3, type: 'publish', params: { queue: 'q', messages: [{ data: 'raw one' }, { data: 'raw two' }] } });
    raw.send({ id: 4, type: 'publish', params: { queue: 'q', messages: [{ data: 5 }] } });
    raw.send({ id: 5, type: 'queue.get', params: { name: 'nope' } });
    raw.send({ id: 6, type: 'publish', params: 'not an object' });
    const stored = (await raw.frame(3)) as { ok: boolean; result: { ids: string[] } };
    expect(stored.ok).toBe(true);
    expect(stored.result.ids).toHaveLength(2);
    expect(await raw.frame(4)).toMatchObject({ ok: false, error: { code: 'INVALID_MESSAGE' } });
    expect(await raw.frame(5)).toMatchObject({ ok: false, error: { code: 'QUEUE_NOT_FOUND' } });
    expect(await raw.frame(6)).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(raw.closed).toBe(false);
    raw.send({ id: 7, type: 'queue.list', params: {} });
    expect(await raw.frame(7)).toMatchObject({ ok: true, result: [{ name: 'q', messages: 2 }] });
    raw.destroy();
    published.push('raw one', 'raw two');
    await othersStillServed();
  });

  it('answers publish.many per publish, and refuses a malformed one whole with INVALID_ARGUMENT', async () => {
    const raw = await RawClient.greeted(sb.socket);
    raw.send({
      id: 2,
      type: 'publish.many',
      params: {
        publishes: [
          { queue: 'q', messages: [{ data: 'many one' }] },
          { queue: 'q', messages: [{ data: 7 }] },
          'not a publish',
          null,
          { queue: 'nope', messages: [{ data: 'x' }] },
          { queue: 'q', messages: [{ data: 'waits' }], wait: true },
          { queue: 'q', messages: [] },
          { queue: 'q', messages: [{ data: 'many two' }, { data: 'many three' }] },
        ],
      },
    });
    const reply = (await raw.frame(2)) as { ok: boolean; result: { results: { ok: boolean; result?: { ids: string[] }; error?: { code: string } }[] } };
    expect(reply.ok).toBe(true);
    const results = reply.result.results;
    expect(results.map((r) => (r.ok ? 'ok' : r.error!.code))).toEqual([
      'ok',
      'INVALID_MESSAGE',
      'INVALID_ARGUMENT',
      // A null publish is no publish, not one to a queue named undefined.
      'INVALID_ARGUMENT',
      'QUEUE_NOT_FOUND',
      'INVALID_ARGUMENT',
      'INVALID_ARGUMENT',
      'ok',
    ]);
    expect(results[7]!.result!.ids).toHaveLength(2);
    expect(results[0]!.result!.ids[0]! < results[7]!.result!.ids[0]!).toBe(true);
    const whole = [
      {},
      { publishes: [] },
      { publishes: 'x' },
      // 10,002 messages in all: more than one publish may carry, though each is within it.
      { publishes: [0, 1].map(() => ({ queue: 'q', messages: Array.from({ length: 5_001 }, () => ({ data: 'x' })) })) },
    ];
    for (const [i, params] of whole.entries()) {
      raw.send({ id: 10 + i, type: 'publish.many', params });
      expect(await raw.frame(10 + i), JSON.stringify(params).slice(0, 60)).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    }
    expect(raw.closed).toBe(false);
    raw.destroy();
    published.push('many one', 'many two', 'many three');
    await othersStillServed();
  });

  it('serves other clients while bad ones misbehave at the same time', async () => {
    const bad = await Promise.all([RawClient.connect(sb.socket), RawClient.greeted(sb.socket), RawClient.connect(sb.socket)]);
    bad[0]!.socket.write('not json\n');
    bad[1]!.socket.write('{"id":9,"type":"publish","params":{"queue":"q","mess'); // stays half-written, open
    bad[2]!.socket.write('x'.repeat(1024 * 1024)); // a long line in progress, no newline
    await othersStillServed();
    await othersStillServed();
    await bad[0]!.waitClosed();
    expect(bad[1]!.closed).toBe(false);
    for (const b of bad) b.destroy();
    await othersStillServed();
  });
});
