/**
 * `discue config` through the real binary, and the precedence it promises:
 * flag > environment > config file > default, for each key, shown by what
 * the other commands then do (the output they print, the daemon that
 * answers, the listener they create, the colour they use).
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { expectError, ok } from '../helpers/discue.js';
import { useSandbox } from '../helpers/sandbox.js';
import type { RunOptions } from '../helpers/sandbox.js';

const ESC = '\u001b[';

describe('discue config', () => {
  const sb = useSandbox();
  let file: string;
  /** Daemons of other homes and sockets a test started; stopped after it. */
  let extra: { home: string; socket: string }[];

  beforeEach(() => {
    file = join(sb.dir, 'user', '.config', 'discue', 'config.json');
    extra = [];
  });
  afterEach(async () => {
    for (const d of extra) await sb.run(['--socket', d.socket, 'daemon', 'stop'], { env: { DISCUE_HOME: d.home } });
  });

  const stored = () => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const run = (args: string[], options: RunOptions = {}) => sb.run(args, options);
  async function okWith(args: string[], env: Record<string, string | undefined>): Promise<string> {
    const result = await run(args, { env });
    expect(result.code, `discue ${args.join(' ')}\nstderr: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  describe('set, get, list, unset, path', () => {
    it('path: under ~/.config, or an absolute XDG_CONFIG_HOME (a relative one is ignored)', async () => {
      expect(await ok(sb, ['config', 'path'])).toBe(file + '\n');
      const xdg = join(sb.dir, 'xdg');
      expect(await okWith(['config', 'path'], { XDG_CONFIG_HOME: xdg })).toBe(join(xdg, 'discue', 'config.json') + '\n');
      expect(await okWith(['config', 'path'], { XDG_CONFIG_HOME: 'relative/dir' })).toBe(file + '\n');
      expect(JSON.parse(await ok(sb, ['config', 'path', '--json']))).toEqual({ path: file });
      // Set through XDG_CONFIG_HOME, read back through it, and the file is there.
      await okWith(['config', 'set', 'listener.timeout', '9s'], { XDG_CONFIG_HOME: xdg });
      expect(JSON.parse(readFileSync(join(xdg, 'discue', 'config.json'), 'utf8'))).toEqual({ listener: { timeout: '9s' } });
      expect(await okWith(['config', 'get', 'listener.timeout'], { XDG_CONFIG_HOME: xdg })).toBe('9s\n');
      expect(await ok(sb, ['config', 'get', 'listener.timeout'])).toBe('30s\n');
    });

    it('set stores normalised values (dotted keys nested), get and list show value and source, unset removes', async () => {
      expect(existsSync(file)).toBe(false);
      expect(await ok(sb, ['config', 'get', 'listener.maxAttempts'])).toBe('10\n');

      expect(await ok(sb, ['config', 'set', 'listener.timeout', '5s'])).toContain('listener.timeout = 5s');
      expect(JSON.parse(await ok(sb, ['config', 'set', 'listener.maxAttempts', '3', '--json']))).toEqual({
        key: 'listener.maxAttempts',
        value: 3,
      });
      await ok(sb, ['config', 'set', 'color', 'never']);
      expect(stored()).toEqual({ listener: { timeout: '5s', maxAttempts: 3 }, color: 'never' });

      expect(await ok(sb, ['config', 'get', 'listener.timeout'])).toBe('5s\n');
      expect(JSON.parse(await ok(sb, ['config', 'get', 'listener.maxAttempts', '--json']))).toEqual({
        key: 'listener.maxAttempts',
        value: '3',
        source: 'config',
      });

      const list = JSON.parse(await ok(sb, ['config', 'list', '--json'])) as { key: string; value: string; source: string; env: string }[];
      expect(list).toEqual([
        { key: 'output', value: 'human', source: 'default', env: 'DISCUE_OUTPUT' },
        { key: 'color', value: 'never', source: 'config', env: 'DISCUE_COLOR' },
        { key: 'socket', value: sb.socket, source: 'default', env: 'DISCUE_SOCKET' },
        { key: 'store', value: join(sb.home, 'data'), source: 'default', env: 'DISCUE_STORE' },
        { key: 'store.replicas', value: '1', source: 'default', env: 'DISCUE_STORE_REPLICAS' },
        { key: 'store.creds', value: '', source: 'default', env: 'DISCUE_STORE_CREDS' },
        { key: 'store.ca', value: '', source: 'default', env: 'DISCUE_STORE_CA' },
        { key: 'listener.timeout', value: '5s', source: 'config', env: 'DISCUE_LISTENER_TIMEOUT' },
        { key: 'listener.maxAttempts', value: '3', source: 'config', env: 'DISCUE_LISTENER_MAX_ATTEMPTS' },
        { key: 'http.listen', value: 'off', source: 'default', env: 'DISCUE_HTTP_LISTEN' },
        { key: 'http.tlsCert', value: 'none', source: 'default', env: 'DISCUE_HTTP_TLS_CERT' },
        { key: 'http.tlsKey', value: 'none', source: 'default', env: 'DISCUE_HTTP_TLS_KEY' },
      ]);
      const table = await okWith(['config', 'ls'], { DISCUE_OUTPUT: 'human', DISCUE_LISTENER_TIMEOUT: '1m' });
      expect(table).toMatch(/^KEY\s+VALUE\s+FROM\s+ENV/);
      expect(table).toMatch(/listener\.timeout\s+1m\s+env\s+DISCUE_LISTENER_TIMEOUT/);
      expect(table).toMatch(/listener\.maxAttempts\s+3\s+config\s+DISCUE_LISTENER_MAX_ATTEMPTS/);
      expect(table).toMatch(/output\s+human\s+env\s+DISCUE_OUTPUT/);

      expect(await ok(sb, ['config', 'unset', 'listener.timeout'])).toContain('listener.timeout unset');
      expect(await ok(sb, ['config', 'get', 'listener.timeout'])).toBe('30s\n');
      await ok(sb, ['config', 'unset', 'listener.maxAttempts']);
      // No empty "listener": {} is left behind.
      expect(stored()).toEqual({ color: 'never' });
      // Unsetting what is not set is fine.
      await ok(sb, ['config', 'unset', 'output']);
      expect(stored()).toEqual({ color: 'never' });
    });

    it('stores a relative socket path as an absolute one', async () => {
      const cwd = join(sb.dir, 'work');
      mkdirSync(cwd);
      await sb.run(['config', 'set', 'socket', 'b.sock'], { cwd });
      expect(stored()).toEqual({ socket: join(cwd, 'b.sock') });
      expect(await ok(sb, ['config', 'get', 'socket'])).toBe(join(cwd, 'b.sock') + '\n');
    });

    it('a bad key or value is exit 2 with INVALID_ARGUMENT or INVALID_DURATION, and nothing is written', async () => {
      expectError(await run(['config', 'set', 'nope', '1']), 2, 'INVALID_ARGUMENT');
      expectError(await run(['config', 'get', 'nope']), 2, 'INVALID_ARGUMENT');
      expectError(await run(['config', 'unset', 'nope']), 2, 'INVALID_ARGUMENT');
      const unknown = await run(['config', 'set', 'listener.retries', '3']);
      expect(unknown.stderr).toContain('keys: output, color, socket, store, store.replicas, store.creds, store.ca, listener.timeout, listener.maxAttempts, http.listen, http.tlsCert, http.tlsKey');
      expectError(await run(['config', 'set', 'output', 'yaml']), 2, 'INVALID_ARGUMENT');
      expectError(await run(['config', 'set', 'color', 'purple']), 2, 'INVALID_ARGUMENT');
      expectError(await run(['config', 'set', 'socket', ' ']), 2, 'INVALID_ARGUMENT');
      expectError(await run(['config', 'set', 'listener.timeout', '5x']), 2, 'INVALID_DURATION');
      expectError(await run(['config', 'set', 'listener.timeout', '0s']), 2, 'INVALID_DURATION');
      for (const bad of ['0', '1001', 'many', '2.5']) {
        expectError(await run(['config', 'set', 'listener.maxAttempts', bad]), 2, 'INVALID_ARGUMENT');
      }
      expect(existsSync(file)).toBe(false);
      // The --json form of the same error.
      const json = await run(['config', 'set', 'color', 'purple', '--json']);
      expect(json.code).toBe(2);
      expect(JSON.parse(json.stderr.trim()).error.code).toBe('INVALID_ARGUMENT');
    });
  });

  describe('precedence: flag > env > config > default', () => {
    it('output: config json makes commands print JSON; DISCUE_OUTPUT=human overrides it; --json overrides that', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const human = await ok(sb, ['queue', 'list']);
      expect(human).toMatch(/^NAME\s+MESSAGES/);

      await ok(sb, ['config', 'set', 'output', 'json']);
      const fromConfig = await ok(sb, ['queue', 'list']);
      expect((JSON.parse(fromConfig) as { name: string }[]).map((q) => q.name)).toEqual(['orders']);
      expect(await ok(sb, ['queue', 'list', '--json'])).toBe(fromConfig);
      // Confirmations give way to JSON too.
      expect(JSON.parse(await ok(sb, ['queue', 'create', 'payments'])).name).toBe('payments');

      const fromEnv = await okWith(['queue', 'list'], { DISCUE_OUTPUT: 'human' });
      expect(fromEnv).toMatch(/^NAME\s+MESSAGES/);
      expect(fromEnv).toMatch(/\norders\s+0/);
      const fromFlag = await okWith(['queue', 'list', '--json'], { DISCUE_OUTPUT: 'human' });
      expect((JSON.parse(fromFlag) as { name: string }[]).map((q) => q.name)).toEqual(['orders', 'payments']);
      // DISCUE_OUTPUT=json alone, with no config.
      await okWith(['config', 'unset', 'output'], {});
      expect(await ok(sb, ['queue', 'list'])).toMatch(/^NAME/);
      expect(JSON.parse(await okWith(['queue', 'list'], { DISCUE_OUTPUT: 'json' }))).toHaveLength(2);
    });

    it('socket: --socket beats DISCUE_SOCKET beats config socket beats $DISCUE_HOME/run', async () => {
      // Three daemons, each with its own home, each on its own socket.
      const daemons = ['c', 'e', 'f'].map((n) => ({ home: join(sb.dir, `h${n}`), socket: join(sb.dir, `${n}.sock`) }));
      for (const d of daemons) {
        extra.push(d);
        await okWith(['--socket', d.socket, 'daemon', 'start'], { DISCUE_HOME: d.home });
      }
      const [cfg, env, flag] = daemons as [(typeof daemons)[0], (typeof daemons)[0], (typeof daemons)[0]];
      const answering = async (args: string[], envVars: Record<string, string> = {}) => {
        const result = await run([...args, 'daemon', 'status', '--json'], { env: envVars });
        return { code: result.code, ...(JSON.parse(result.stdout) as { socket: string; home: string; running: boolean }) };
      };

      // Default: the sandbox's own socket, where nothing runs (status does not start one).
      expect(await answering([])).toMatchObject({ code: 3, running: false, socket: sb.socket });

      await ok(sb, ['config', 'set', 'socket', cfg.socket]);
      expect(await answering([])).toMatchObject({ code: 0, running: true, socket: cfg.socket, home: cfg.home });
      expect(await answering([], { DISCUE_SOCKET: env.socket })).toMatchObject({ code: 0, socket: env.socket, home: env.home });
      expect(await answering(['--socket', flag.socket], { DISCUE_SOCKET: env.socket })).toMatchObject({
        code: 0,
        socket: flag.socket,
        home: flag.home,
      });
      expect(await answering(['--socket', flag.socket])).toMatchObject({ socket: flag.socket, home: flag.home });

      // Work goes where the status says: a queue made through the config socket is in that daemon only.
      await ok(sb, ['queue', 'create', 'via-config']);
      const names = async (socket: string) =>
        (JSON.parse(await ok(sb, ['--socket', socket, 'queue', 'list', '--json'])) as { name: string }[]).map((q) => q.name);
      expect(await names(cfg.socket)).toEqual(['via-config']);
      expect(await names(env.socket)).toEqual([]);

      expect(JSON.parse(await okWith(['config', 'get', 'socket', '--json'], { DISCUE_SOCKET: env.socket }))).toEqual({
        key: 'socket',
        value: env.socket,
        source: 'env',
      });
    });

    it('listener.maxAttempts and listener.timeout: listener add uses config, then env, then its flags', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const add = async (name: string, flags: string[] = [], env: Record<string, string> = {}) => {
        await okWith(['listener', 'add', '--queue', 'orders', '--exec', 'true', '--name', name, ...flags], env);
        const shown = JSON.parse(await ok(sb, ['listener', 'show', name, '--json'])) as { maxAttempts: number; timeoutMs: number };
        return { maxAttempts: shown.maxAttempts, timeoutMs: shown.timeoutMs };
      };

      expect(await add('defaults')).toEqual({ maxAttempts: 10, timeoutMs: 30_000 });

      await ok(sb, ['config', 'set', 'listener.maxAttempts', '4']);
      await ok(sb, ['config', 'set', 'listener.timeout', '7s']);
      expect(await add('from-config')).toEqual({ maxAttempts: 4, timeoutMs: 7_000 });

      const env = { DISCUE_LISTENER_MAX_ATTEMPTS: '6', DISCUE_LISTENER_TIMEOUT: '9s' };
      expect(await add('from-env', [], env)).toEqual({ maxAttempts: 6, timeoutMs: 9_000 });
      // One from each level at once.
      expect(await add('mixed', ['--timeout', '2s'], { DISCUE_LISTENER_MAX_ATTEMPTS: '6' })).toEqual({ maxAttempts: 6, timeoutMs: 2_000 });
      expect(await add('from-flags', ['--max-attempts', '8', '--timeout', '11s'], env)).toEqual({ maxAttempts: 8, timeoutMs: 11_000 });
    });

    it('listener defaults: a bad value in the environment or the file is an error naming where it came from', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const badEnv = await run(['listener', 'add', '--queue', 'orders', '--exec', 'true'], { env: { DISCUE_LISTENER_TIMEOUT: 'soon' } });
      expectError(badEnv, 2, 'INVALID_DURATION');
      expect(badEnv.stderr).toContain('DISCUE_LISTENER_TIMEOUT');

      mkdirSync(join(sb.dir, 'user', '.config', 'discue'), { recursive: true });
      writeFileSync(file, JSON.stringify({ listener: { maxAttempts: 'many' } }));
      const badFile = await run(['listener', 'add', '--queue', 'orders', '--exec', 'true']);
      expectError(badFile, 2, 'INVALID_ARGUMENT');
      expect(badFile.stderr).toContain(file);
      // A flag makes the bad default irrelevant.
      await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', 'true', '--max-attempts', '2']);
      expect(JSON.parse(await ok(sb, ['listener', 'list', '--json']))).toHaveLength(1);
    });

    it('color: config always colours piped output; DISCUE_COLOR, --no-color and NO_COLOR win over it', async () => {
      // The sandbox sets NO_COLOR=1; these runs unset it unless they say otherwise.
      const colourless = { NO_COLOR: undefined };
      const created = async (name: string, env: Record<string, string | undefined> = {}, flags: string[] = []) =>
        okWith(['queue', 'create', name, ...flags], { ...colourless, ...env });

      expect(await created('a')).not.toContain(ESC); // auto, and stdout is a pipe
      await ok(sb, ['config', 'set', 'color', 'always']);
      const coloured = await created('b');
      expect(coloured).toContain(`${ESC}32m`);
      expect(coloured).toContain('created queue b');
      // Errors on stderr too.
      const error = await run(['queue', 'create', 'b'], { env: colourless });
      expect(error.code).toBe(5);
      expect(error.stderr).toContain(`${ESC}31merror:`);

      expect(await created('c', { NO_COLOR: '1' })).not.toContain(ESC);
      expect(await created('d', {}, ['--no-color'])).not.toContain(ESC);
      expect(await created('e', { DISCUE_COLOR: 'never' })).not.toContain(ESC);
      expect(await created('f', { DISCUE_COLOR: 'auto' })).not.toContain(ESC);
      // JSON is never coloured.
      expect(JSON.parse(await created('g', {}, ['--json'])).name).toBe('g');

      await ok(sb, ['config', 'set', 'color', 'never']);
      expect(await created('h')).not.toContain(ESC);
      expect(await created('i', { DISCUE_COLOR: 'always' })).toContain(ESC);
      expect(await created('j', { DISCUE_COLOR: 'always', NO_COLOR: '1' })).not.toContain(ESC);
    });
  });

  describe('a broken config file', () => {
    it('is a warning on stderr; commands still work with the defaults; set refuses to overwrite it', async () => {
      mkdirSync(join(sb.dir, 'user', '.config', 'discue'), { recursive: true });
      writeFileSync(file, '{"output": "json",');

      const list = await run(['queue', 'list']);
      expect(list.code).toBe(0);
      expect(list.stderr).toContain('warning:');
      expect(list.stderr).toContain(file);
      expect(list.stderr).toContain('not valid JSON');

      await ok(sb, ['queue', 'create', 'orders']);
      const human = await run(['queue', 'list']);
      expect(human.stdout).toMatch(/^NAME\s+MESSAGES/); // not JSON: the file's output is not applied

      const get = await run(['config', 'get', 'output']);
      expect(get.code).toBe(0);
      expect(get.stdout).toBe('human\n');
      expect(get.stderr).toContain('not valid JSON');
      expect((await run(['config', 'list'])).code).toBe(0);
      expect((await run(['config', 'path'])).stdout).toBe(file + '\n');

      // set and unset would have to rewrite the file: they say which file is wrong instead.
      for (const args of [['config', 'set', 'output', 'human'], ['config', 'unset', 'output']]) {
        const result = await run(args);
        expectError(result, 2, 'INVALID_ARGUMENT');
        expect(result.stderr).toContain('fix or delete it');
      }
      expect(readFileSync(file, 'utf8')).toBe('{"output": "json",');
    });

    it('a file that is JSON but not an object is refused the same way', async () => {
      mkdirSync(join(sb.dir, 'user', '.config', 'discue'), { recursive: true });
      writeFileSync(file, '[1, 2]');
      const path = await run(['config', 'path']);
      expect(path.code).toBe(0);
      expect(path.stderr).toContain('must hold a JSON object');
      expectError(await run(['config', 'set', 'output', 'json']), 2, 'INVALID_ARGUMENT');
      expect(readFileSync(file, 'utf8')).toBe('[1, 2]');
    });

    it('a bad output or colour in the environment is a warning, and the default applies', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const result = await run(['queue', 'list'], { env: { DISCUE_OUTPUT: 'xml', DISCUE_COLOR: 'loud', NO_COLOR: undefined } });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^NAME\s+MESSAGES/);
      expect(result.stdout).not.toContain(ESC);
      expect(result.stderr).toContain('DISCUE_OUTPUT');
      expect(result.stderr).toContain('DISCUE_COLOR');
    });
  });
});
