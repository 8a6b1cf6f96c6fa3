/**
 * The NATS client is loaded only when the store is NATS: the daemon and
 * the LevelDB backend start without it (start-up time of every command).
 * A resolve hook in a child node refuses every @nats-io module; the daemon's
 * modules load anyway, and asking for the NATS backend trips the hook (so
 * the check is live).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

const hooks = `export async function resolve(specifier, context, next) {
  if (specifier.startsWith('@nats-io/')) throw new Error('NATS CLIENT LOADED: ' + specifier);
  return next(specifier, context);
}`;
const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;

function run(script: string): { status: number | null; out: string } {
  const result = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
  });
  return { status: result.status, out: result.stdout + result.stderr };
}

describe('the NATS client stays unloaded on the LevelDB path', () => {
  it('loads the daemon (its modules and its bundle) and the LevelDB backend without any @nats-io module, and loads it for a NATS store', () => {
    const level = run(
      `await import('./dist/daemon/server.js'); await import('./dist/daemon/bundle.js'); const b = await import('./dist/backend/index.js');
       await b.createBackend({ store: { kind: 'leveldb', location: '/nonexistent' }, dedupe: b.DEFAULT_DEDUPE, log: console }); console.log('level ok');`,
    );
    expect(level.out).toContain('level ok');
    expect(level.status).toBe(0);
    const nats = run(
      `const b = await import('./dist/backend/index.js');
       await b.createBackend({ store: { kind: 'nats', location: 'nats://127.0.0.1:1' }, dedupe: b.DEFAULT_DEDUPE, log: console });`,
    );
    expect(nats.status).not.toBe(0);
    expect(nats.out).toContain('NATS CLIENT LOADED: @nats-io/');
  });
});
