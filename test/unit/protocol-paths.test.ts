import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvePaths } from '../../src/protocol/paths.js';

describe('resolvePaths', () => {
  it('keeps all state under DISCUE_HOME', () => {
    const paths = resolvePaths({ env: { DISCUE_HOME: '/srv/broker' } });
    expect(paths).toEqual({
      home: '/srv/broker',
      dataDir: '/srv/broker/data',
      runDir: '/srv/broker/run',
      socket: '/srv/broker/run/discue.sock',
      logFile: '/srv/broker/daemon.log',
      pidFile: '/srv/broker/run/daemon.pid',
      daemonLock: '/srv/broker/run/daemon.lock',
      startLock: '/srv/broker/run/start.lock',
    });
  });

  it('lets options win over the environment, and ignores empty variables', () => {
    const env = { DISCUE_HOME: '/env/home', DISCUE_SOCKET: '/env/s.sock' };
    expect(resolvePaths({ env }).socket).toBe('/env/s.sock');
    expect(resolvePaths({ env, socket: '/flag.sock', home: '/flag' })).toMatchObject({ socket: '/flag.sock', home: '/flag' });
    expect(resolvePaths({ env: { DISCUE_HOME: '', DISCUE_SOCKET: '' }, home: '/h' }).socket).toBe('/h/run/discue.sock');
    expect(resolvePaths({ env: { DISCUE_HOME: '/h' }, dataDir: '/elsewhere' }).dataDir).toBe('/elsewhere');
  });

  it('makes relative paths absolute', () => {
    const paths = resolvePaths({ env: { DISCUE_HOME: 'rel/home', DISCUE_SOCKET: 'rel.sock' } });
    expect(paths.home).toBe(join(process.cwd(), 'rel/home'));
    expect(paths.socket).toBe(join(process.cwd(), 'rel.sock'));
  });

  it('moves the socket of a deep home to a per-user directory in tmp, one per home', () => {
    const deep = '/x/' + 'd'.repeat(120);
    const a = resolvePaths({ env: { DISCUE_HOME: deep } });
    const b = resolvePaths({ env: { DISCUE_HOME: deep + '2' } });
    expect(Buffer.byteLength(a.socket)).toBeLessThanOrEqual(100);
    expect(dirname(a.socket)).toBe(join(tmpdir(), `discue-${process.getuid!()}`));
    expect(a.socket).not.toBe(b.socket);
    expect(resolvePaths({ env: { DISCUE_HOME: deep } }).socket).toBe(a.socket);
    // Everything else stays in the home.
    expect(a.pidFile).toBe(`${deep}/run/daemon.pid`);
  });
});
