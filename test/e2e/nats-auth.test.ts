/**
 * A NATS store behind a user and password, through the CLI: the right
 * credentials in the URL connect, wrong ones are BACKEND_UNAVAILABLE (exit 3)
 * saying they were refused, and the password is never shown. And one behind
 * TLS: tls:// with the CA file (store.ca) connects, without it the server's
 * certificate is refused.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectError } from '../helpers/discue.js';
import { natsAvailable, natsServers } from '../helpers/nats.js';
import type { NatsServers } from '../helpers/nats.js';
import { useSandbox } from '../helpers/sandbox.js';
import { mustRun, runJson } from '../helpers/delivery.js';
import type { DaemonStatus } from '../../src/protocol/wire.js';

const available = natsAvailable('the NATS credentials test');

describe.runIf(available)('a NATS store with credentials', () => {
  let servers: NatsServers;
  const sb = useSandbox();
  beforeAll(async () => {
    servers = await natsServers(1, 30_000, ['authorization { user: discue, password: "s3cret-pw" }']);
  }, 60_000);
  afterAll(async () => {
    await servers?.stop();
  });

  it('connects with the user and password in the URL, refuses wrong ones, and masks the password', async () => {
    const port = servers.nodes[0]!.clientPort;
    const wrong = await sb.run(['queue', 'list'], { env: { DISCUE_STORE: `nats://discue:nope@127.0.0.1:${port}` } });
    expectError(wrong, 3, 'DAEMON_START_FAILED');
    expect(wrong.stderr).toContain('BACKEND_UNAVAILABLE');
    expect(wrong.stderr).toContain('refused');
    expect(wrong.stderr).not.toContain('nope');

    sb.env.DISCUE_STORE = `nats://discue:s3cret-pw@127.0.0.1:${port}`;
    await mustRun(sb, ['queue', 'create', 'safe']);
    const status = await runJson<DaemonStatus>(sb, ['daemon', 'status']);
    expect(status.store.location).toBe(`nats://discue:***@127.0.0.1:${port}`);
    expect(status.cluster?.servers).toEqual([`nats://discue:***@127.0.0.1:${port}`]);
    expect(JSON.stringify(status)).not.toContain('s3cret');
    expect(sb.log()).not.toContain('s3cret');
  }, 60_000);
});

const TLS = fileURLToPath(new URL('../fixtures/nats-tls/', import.meta.url));

describe.runIf(available)('a NATS store over TLS', () => {
  let servers: NatsServers;
  const sb = useSandbox();
  beforeAll(async () => {
    servers = await natsServers(1, 30_000, [`tls { cert_file: ${JSON.stringify(`${TLS}server.pem`)}, key_file: ${JSON.stringify(`${TLS}server.key`)} }`]);
  }, 60_000);
  afterAll(async () => {
    await servers?.stop();
  });

  it('connects to tls:// with the CA of store.ca, and refuses a certificate it cannot verify', async () => {
    sb.env.DISCUE_STORE = `tls://127.0.0.1:${servers.nodes[0]!.clientPort}`;
    const untrusted = await sb.run(['queue', 'list']);
    expectError(untrusted, 3, 'DAEMON_START_FAILED');
    expect(untrusted.stderr).toContain('BACKEND_UNAVAILABLE');
    await mustRun(sb, ['config', 'set', 'store.ca', `${TLS}ca.pem`]);
    await mustRun(sb, ['queue', 'create', 'sealed']);
    const status = await runJson<DaemonStatus>(sb, ['daemon', 'status']);
    expect(status.store.ca).toBe(`${TLS}ca.pem`);
    expect(status.cluster?.connected).toContain(`127.0.0.1:${servers.nodes[0]!.clientPort}`);
  }, 60_000);
});
