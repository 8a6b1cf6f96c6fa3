/**
 * Bad input is refused at the door: control characters in a message name,
 * bytes that are not UTF-8 (on the socket and on the CLI's stdin), an --exec
 * program that cannot run; and HTTP redirects are failed attempts, not followed.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RawClient, expectError, listAll, ok, statusPid } from '../helpers/discue.js';
import { addListener, listDeliveries, startHookServer } from '../helpers/delivery.js';
import { useSandbox, waitFor } from '../helpers/sandbox.js';
import type { RunResult } from '../helpers/sandbox.js';

describe('bad input is refused at the door', () => {
  const sb = useSandbox();


  it('refuses a message name holding a control character (C0 or DEL) with INVALID_MESSAGE, exit 2', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    // As a JSON argument, with --name, and as an NDJSON line.
    for (const name of ['a\u0000b', 'tab\there', 'new\nline', '\u001f', 'del\u007f']) {
      const asJson = await sb.run(['publish', 'q', JSON.stringify({ data: 'x', name })]);
      expectError(asJson, 2, 'INVALID_MESSAGE');
      expect(asJson.stderr).toContain('control character');
      expectError(await sb.run(['publish', 'q'], { input: JSON.stringify({ data: 'x', name }) + '\n' }), 2, 'INVALID_MESSAGE');
    }
    expectError(await sb.run(['publish', 'q', '--data', 'x', '--name', 'bell\u0007']), 2, 'INVALID_MESSAGE');

    // Every C0 character and DEL, straight to the daemon: each refused, the connection kept.
    const raw = await RawClient.greeted(sb.socket);
    const controls = [...Array.from({ length: 32 }, (_, i) => i), 0x7f];
    for (const code of controls) {
      raw.send({ id: 1000 + code, type: 'publish', params: { queue: 'q', messages: [{ data: 'x', name: `n${String.fromCharCode(code)}` }] } });
    }
    for (const code of controls) {
      expect(await raw.frame(1000 + code), `U+${code.toString(16)}`).toMatchObject({ ok: false, error: { code: 'INVALID_MESSAGE' } });
    }
    raw.destroy();

    // Printable names beyond ASCII are fine.
    await ok(sb, ['publish', 'q', '--data', 'x', '--name', 'café.😀']);
    expect((await listAll(sb, 'q')).map((m) => m.name)).toEqual(['café.😀']);
  });

  it('refuses a frame that is not UTF-8 with BAD_FRAME, keeps the connection, stores nothing of it', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const pid = await statusPid(sb);
    const raw = await RawClient.greeted(sb.socket);
    const bad = Buffer.concat([
      Buffer.from('{"id":2,"type":"publish","params":{"queue":"q","messages":[{"data":"caf'),
      Buffer.from([0xe9, 0xff, 0xc3]), // Latin-1 é, a byte never in UTF-8, a cut-off sequence
      Buffer.from('"}]}}\n'),
    ]);
    raw.socket.write(bad);
    expect(await raw.frame(2)).toMatchObject({ ok: false, error: { code: 'BAD_FRAME' } });
    expect(((await raw.frame(2)).error as { message: string }).message).toContain('UTF-8');
    // Framing was intact: the next frame on the same connection is served.
    raw.send({ id: 3, type: 'publish', params: { queue: 'q', messages: [{ data: 'café' }] } });
    expect(await raw.frame(3)).toMatchObject({ ok: true });
    expect(raw.closed).toBe(false);
    raw.destroy();
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['café']);
    expect(await statusPid(sb)).toBe(pid);
  });

  /** `discue publish q` with these chunks written to its stdin one by one. */
  async function publishBytes(chunks: Buffer[]): Promise<RunResult> {
    const child = sb.spawn(['publish', 'q']);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // It may stop reading at the bad line, before all is written.
    child.stdin!.on('error', () => undefined);
    const closed = new Promise<RunResult>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    );
    for (const chunk of chunks) child.stdin!.write(chunk);
    child.stdin!.end();
    return closed;
  }

  it('publish refuses stdin that is not UTF-8 with INVALID_MESSAGE (exit 2), naming the line', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const refused = await publishBytes([Buffer.from('{"data":"fine"}\n{"data":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]);
    expectError(refused, 2, 'INVALID_MESSAGE');
    expect(refused.stderr).toContain('line 2');
    expect(refused.stderr).toContain('UTF-8');
    expect(await listAll(sb, 'q')).toEqual([]);

    // Multi-byte characters split across reads, CRLF line ends and a last line without newline all pass.
    const bytes = Buffer.from('{"data":"é€😀"}\r\n{"data":"last"}');
    const done = await publishBytes(Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)));
    expect(done.code, done.stderr).toBe(0);
    expect((await listAll(sb, 'q')).map((m) => m.data)).toEqual(['é€😀', 'last']);
  });

  it('listener add --exec refuses a program that does not exist or is not executable, and finds bare names on PATH', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const missing = await sb.run(['listener', 'add', '--queue', 'q', '--exec', './notify.sh']);
    expectError(missing, 2, 'COMMAND_NOT_FOUND');
    expect(missing.stderr).toContain(join(sb.dir, 'notify.sh'));

    writeFileSync(join(sb.dir, 'notify.sh'), '#!/bin/sh\ncat\n');
    chmodSync(join(sb.dir, 'notify.sh'), 0o644);
    const notExecutable = await sb.run(['listener', 'add', '--queue', 'q', '--exec', './notify.sh --verbose']);
    expectError(notExecutable, 2, 'COMMAND_NOT_EXECUTABLE');
    expect(notExecutable.stderr).toContain('chmod +x ./notify.sh');

    mkdirSync(join(sb.dir, 'adir'));
    expectError(await sb.run(['listener', 'add', '--queue', 'q', '--exec', './adir']), 2, 'COMMAND_NOT_EXECUTABLE');
    const unknown = await sb.run(['listener', 'add', '--queue', 'q', '--exec', 'no-such-program-discue']);
    expectError(unknown, 2, 'COMMAND_NOT_FOUND');
    expect(unknown.stderr).toContain('PATH');
    expect(JSON.parse(await ok(sb, ['listener', 'list', '--json']))).toEqual([]);

    // Fixed: accepted, relative to the directory listener add ran in; a bare name is found on PATH.
    chmodSync(join(sb.dir, 'notify.sh'), 0o755);
    await addListener(sb, ['--queue', 'q', '--exec', './notify.sh --verbose']);
    await addListener(sb, ['--queue', 'q', '--exec', 'cat']);
    mkdirSync(join(sb.dir, 'sub'));
    await addListener(sb, ['--queue', 'q', '--exec', '../notify.sh'], join(sb.dir, 'sub'));
    // A shell resolves its own words: not checked.
    await addListener(sb, ['--queue', 'q', '--shell', '--exec', 'no-such-program-discue || true']);
    expect(JSON.parse(await ok(sb, ['listener', 'list', '--json']))).toHaveLength(4);
  });

  it('an HTTP redirect is a failed attempt and is not followed', async () => {
    await ok(sb, ['queue', 'create', 'q']);
    const target = await startHookServer();
    const redirecting = await startHookServer(() => ({ status: 307, headers: { location: target.url } }));
    await addListener(sb, ['--queue', 'q', '--url', redirecting.url, '--max-attempts', '2', '--retry-delay', '50ms']);
    await ok(sb, ['publish', 'q', '--data', 'x']);
    const [dead] = await waitFor(
      async () => {
        const list = await listDeliveries(sb, ['--state', 'dead']);
        return list.length === 1 ? list : undefined;
      },
      30_000,
      'the redirected delivery to die',
    );
    expect(dead!.attempts.map((a) => [a.ok, a.status])).toEqual([
      [false, 307],
      [false, 307],
    ]);
    expect(redirecting.requests).toHaveLength(2);
    expect(target.requests).toHaveLength(0);
  });
});
