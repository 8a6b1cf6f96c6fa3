/**
 * Durability: publishers in several processes (the CLI one message at a
 * time, and library clients with many publishes in flight) while the daemon
 * is killed with SIGKILL, twice. Every publish that was acknowledged is
 * stored exactly once, in order per publisher, and nothing stored is corrupt.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { listAll, messageCount, ok, waitForExit } from '../helpers/discue.js';
import { ROOT, useSandbox, waitFor } from '../helpers/sandbox.js';

/** A library publisher: keeps `inFlight` publishes going, reconnects after the daemon dies, stops on stdin EOF. */
const PUBLISHER = `
import { connect } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'index.js')).href)};
const [name, inFlightText] = process.argv.slice(2);
const inFlight = Number(inFlightText);
let stopping = false;
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => (stopping = true));
let seq = 0;
let current;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// One connection shared by all lanes; after it fails, the first lane to notice opens the next.
function getClient() {
  current ??= (async () => {
    for (;;) {
      try {
        return await connect();
      } catch (err) {
        process.stdout.write('connect-failed ' + (err.code ?? err.message) + '\\n');
        await sleep(50);
      }
    }
  })();
  return current;
}
async function lane() {
  while (!stopping) {
    const used = getClient();
    const c = await used;
    const data = name + '-' + ++seq;
    try {
      const result = await c.publish('d', { data });
      process.stdout.write('ok ' + data + ' ' + result.ids[0] + '\\n');
    } catch (err) {
      process.stdout.write('fail ' + data + ' ' + err.code + '\\n');
      if (current === used) {
        current = undefined;
        c.close().catch(() => undefined);
      }
    }
  }
}
await Promise.all(Array.from({ length: inFlight }, lane));
await (await current)?.close();
`;

interface Ack {
  data: string;
  id: string;
}

describe('durability under kill -9', () => {
  const sb = useSandbox();
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
  });

  it('keeps every acknowledged message exactly once, in order, across two SIGKILLs of the daemon', async () => {
    await ok(sb, ['queue', 'create', 'd']);
    const script = join(sb.dir, 'publisher.mjs');
    writeFileSync(script, PUBLISHER);

    const acks = new Map<string, Ack[]>();
    const attempted = new Map<string, number>();
    const record = (publisher: string, ack: Ack) => {
      if (!acks.has(publisher)) acks.set(publisher, []);
      acks.get(publisher)!.push(ack);
    };

    // Two library publishers in their own processes, 4 publishes in flight each.
    const libraries = ['lib1', 'lib2'].map((name) => {
      const child = spawn(process.execPath, [script, name, '4'], { env: sb.env, cwd: sb.dir, stdio: ['pipe', 'pipe', 'pipe'] });
      children.push(child);
      let buffer = '';
      child.stdout!.setEncoding('utf8').on('data', (text: string) => {
        buffer += text;
        let nl = buffer.indexOf('\n');
        while (nl !== -1) {
          const [kind, data, id] = buffer.slice(0, nl).split(' ');
          buffer = buffer.slice(nl + 1);
          if (kind === 'ok') record(name, { data: data!, id: id! });
          if (kind === 'ok' || kind === 'fail') attempted.set(name, (attempted.get(name) ?? 0) + 1);
          nl = buffer.indexOf('\n');
        }
      });
      // Not `collect`: it would close stdin at once, which tells the publisher to stop.
      const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { name, child, done };
    });

    // Two CLI publishers: one `discue publish` process after another.
    let stopCli = false;
    const cli = ['cli1', 'cli2'].map(async (name) => {
      let seq = 0;
      while (!stopCli) {
        const data = `${name}-${++seq}`;
        const result = await sb.run(['publish', 'd', '--data', data], { timeoutMs: 60_000 });
        attempted.set(name, (attempted.get(name) ?? 0) + 1);
        if (result.code === 0) record(name, { data, id: result.stdout.trim() });
        else expect([3], `${data}: ${result.stderr}`).toContain(result.code);
      }
    });

    const progress = (n: number) => () => ['lib1', 'lib2', 'cli1', 'cli2'].every((p) => (acks.get(p)?.length ?? 0) >= n);
    const killDaemon = async () => {
      const pid = sb.daemonPid()!;
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid);
      return pid;
    };

    await waitFor(progress(3), 60_000, 'every publisher to publish');
    const first = await killDaemon();
    await waitFor(() => sb.daemonPid() !== first && progress(6)(), 60_000, 'publishing to resume');
    const second = await killDaemon();
    await waitFor(() => sb.daemonPid() !== second && progress(9)(), 60_000, 'publishing to resume again');

    stopCli = true;
    for (const lib of libraries) lib.child.stdin!.end();
    await Promise.all(cli);
    for (const lib of libraries) expect(await lib.done).toBe(0);

    const stored = await listAll(sb, 'd');
    // Nothing corrupt: every stored message is one a publisher sent, whole.
    for (const m of stored) {
      expect(m.queue).toBe('d');
      expect(m.data).toMatch(/^(lib|cli)[12]-\d+$/);
    }
    // Nothing twice.
    const datas = stored.map((m) => m.data);
    expect(new Set(datas).size).toBe(datas.length);
    // Ids in publish order.
    const ids = stored.map((m) => m.id);
    expect([...ids].sort()).toEqual(ids);
    // Every acknowledged publish is there, with the id it was acknowledged with.
    const byData = new Map(stored.map((m) => [m.data, m]));
    let acknowledged = 0;
    for (const [publisher, list] of acks) {
      for (const ack of list) {
        expect(byData.get(ack.data)?.id, `${publisher} ${ack.data}`).toBe(ack.id);
        acknowledged++;
      }
      // In order per publisher: sequence numbers increase with the ids.
      const seqs = stored.filter((m) => m.data.startsWith(publisher + '-')).map((m) => Number(m.data.split('-')[1]));
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    }
    expect(acknowledged).toBeGreaterThanOrEqual(36);
    // Stored but not acknowledged only for publishes that failed while the daemon died.
    const unacknowledged = stored.length - acknowledged;
    const failed = [...attempted.entries()].reduce((sum, [p, n]) => sum + n - (acks.get(p)?.length ?? 0), 0);
    expect(unacknowledged).toBeLessThanOrEqual(failed);
    // The queue's counter survived the crashes too.
    expect(await messageCount(sb, 'd')).toBe(stored.length);
  });
});
