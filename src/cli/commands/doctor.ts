/**
 * `discue doctor`: what stands between this user and a working broker, one
 * line per check, each with what to do about it. It changes nothing and
 * never starts the daemon.
 */
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { access, lstat, stat, statfs } from 'node:fs/promises';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { EXIT } from '../../protocol/errors.js';
import { PROTOCOL_VERSION } from '../../protocol/frames.js';
import type { ListenerInfo } from '../../protocol/wire.js';
import { assertSocketPath } from '../../protocol/paths.js';
import { parseStore } from '../../protocol/store.js';
import { VERSION } from '../../version.js';
import { action, examples } from '../action.js';
import { CONFIG_KEYS, configPath, readConfig, resolveSetting } from '../config.js';
import type { Context } from '../context.js';
import { bytes, plural } from '../format.js';
import { daemonVersion } from './version.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  check: string;
  status: CheckStatus;
  message: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

/** How long an HTTP listener may take to answer the probe. */
const PROBE_TIMEOUT_MS = 3000;
/** Below this much free space LevelDB cannot compact or write: fail. Below LOW_DISK, warn. */
const NO_DISK = 100 * 1024 * 1024;
const LOW_DISK = 1024 * 1024 * 1024;

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the socket, daemon, permissions, disk space, config file and listeners; say what to fix')
    .addHelpText(
      'after',
      examples(
        'discue doctor',
        'discue doctor --json | jq \'.[] | select(.status != "ok")\'',
      ) +
        '\nOne line per check: ok, warn or fail, and what to do. Exit 0 if nothing failed, 1 otherwise.\n' +
        'Never starts the daemon; HTTP listeners get a HEAD request (3 s limit).\n',
    )
    .action(
      action(async (ctx) => {
        const checks = await diagnose(ctx);
        if (ctx.json) ctx.printJson(checks);
        else {
          const color = { ok: ctx.colors.green, warn: ctx.colors.yellow, fail: ctx.colors.red };
          const width = Math.max(...checks.map((c) => c.check.length));
          for (const c of checks) {
            const fix = c.fix === undefined ? '' : ` → ${c.fix}`;
            ctx.print(`${color[c.status](c.status.padEnd(4))}  ${c.check.padEnd(width)}  ${c.message}${fix}`);
          }
        }
        return checks.some((c) => c.status === 'fail') ? EXIT.FAILURE : EXIT.OK;
      }),
    );
}

/**
 * Where the data lives when no daemon says: the store setting's directory. A
 * bad setting is checkConfig's to report; the disk check falls back to the default.
 */
function settingDataDir(ctx: Context): string {
  try {
    const store = parseStore(resolveSetting('store', ctx.config).value);
    return store.kind === 'leveldb' ? store.location : ctx.paths.dataDir;
  } catch {
    return ctx.paths.dataDir;
  }
}

export async function diagnose(ctx: Context): Promise<Check[]> {
  const { paths } = ctx;
  const checks: Check[] = [await checkHome(paths.home), ...(await checkSocket(paths.socket))];

  const daemon = await daemonVersion(ctx);
  let dataDir = settingDataDir(ctx);
  let listeners: ListenerInfo[] | undefined;
  if (daemon.error) {
    checks.push({ check: 'daemon', status: 'fail', message: `${daemon.error.message} [${daemon.error.code}]` });
  } else if (!daemon.running) {
    checks.push({
      check: 'daemon',
      status: 'warn',
      message: 'not running; listeners are not checked',
      fix: 'any command starts it, or `discue daemon start`',
    });
  } else if (daemon.protocol !== PROTOCOL_VERSION) {
    checks.push({
      check: 'daemon',
      status: 'fail',
      message: `pid ${daemon.pid} runs discue ${daemon.version} (protocol ${daemon.protocol}); this CLI is ${VERSION} (protocol ${PROTOCOL_VERSION})`,
      fix: '`discue daemon restart`',
    });
  } else {
    const client = await ctx.connect({ autoStart: false });
    const status = await client.request('daemon.status', {});
    dataDir = status.dataDir;
    listeners = await client.request('listener.list', {});
    const message = `running, pid ${status.pid}, discue ${status.version} (protocol ${status.protocol})`;
    checks.push(
      status.version === VERSION
        ? { check: 'daemon', status: 'ok', message }
        : { check: 'daemon', status: 'warn', message: `${message}; this CLI is ${VERSION}`, fix: '`discue daemon restart` to run this version' },
    );
  }
  checks.push(await checkDisk(dataDir), ...checkConfig());
  if (listeners !== undefined) {
    if (listeners.length === 0) checks.push({ check: 'listeners', status: 'ok', message: 'none registered' });
    checks.push(...(await Promise.all(listeners.filter((l) => l.kind !== 'stream').map(checkListener))));
  }
  return checks;
}

async function statOrUndefined(path: string, follow = true): Promise<Stats | undefined> {
  try {
    return await (follow ? stat(path) : lstat(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const uid = () => (typeof process.getuid === 'function' ? process.getuid() : undefined);
const mode = (info: Stats) => (info.mode & 0o777).toString(8).padStart(4, '0');

/** A directory that holds broker state: ours, only ours, writable. */
async function checkPrivateDir(check: string, dir: string, what: string): Promise<Check> {
  const info = await statOrUndefined(dir);
  if (info === undefined) return { check, status: 'ok', message: `${dir} does not exist yet; created (0700) on first use` };
  if (!info.isDirectory()) {
    return { check, status: 'fail', message: `${dir} is not a directory`, fix: `remove it, or point ${what} elsewhere` };
  }
  if (uid() !== undefined && info.uid !== uid()) {
    return { check, status: 'fail', message: `${dir} belongs to uid ${info.uid}, not to you (uid ${uid()})`, fix: `point ${what} at a directory of your own` };
  }
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    return { check, status: 'fail', message: `${dir} is not writable (mode ${mode(info)})`, fix: `chmod 700 ${dir}` };
  }
  if ((info.mode & 0o077) !== 0) {
    return { check, status: 'warn', message: `${dir} has mode ${mode(info)}: other users can look inside`, fix: `chmod 700 ${dir}` };
  }
  return { check, status: 'ok', message: `${dir} (mode ${mode(info)}, yours)` };
}

function checkHome(home: string): Promise<Check> {
  return checkPrivateDir('home', home, 'DISCUE_HOME');
}

async function checkSocket(socket: string): Promise<Check[]> {
  try {
    assertSocketPath(socket);
  } catch (err) {
    return [{ check: 'socket', status: 'fail', message: (err as Error).message }];
  }
  const dir = await checkPrivateDir('socket dir', dirname(socket), '--socket or DISCUE_SOCKET');
  const info = await statOrUndefined(socket, false);
  if (info === undefined) return [dir, { check: 'socket', status: 'ok', message: `${socket} (not there: no daemon is listening)` }];
  if (!info.isSocket()) {
    return [
      dir,
      { check: 'socket', status: 'fail', message: `${socket} exists and is not a socket`, fix: 'remove it, or point --socket or DISCUE_SOCKET elsewhere' },
    ];
  }
  if ((info.mode & 0o077) !== 0) {
    return [dir, { check: 'socket', status: 'warn', message: `${socket} has mode ${mode(info)}`, fix: `chmod 600 ${socket}, or \`discue daemon restart\`` }];
  }
  return [dir, { check: 'socket', status: 'ok', message: `${socket} (mode ${mode(info)})` }];
}

async function checkDisk(dataDir: string): Promise<Check> {
  // The data directory may not exist before the first start: measure where it will be.
  let dir = dataDir;
  while ((await statOrUndefined(dir)) === undefined && dirname(dir) !== dir) dir = dirname(dir);
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const message = `${bytes(free)} free of ${bytes(total)} where the data lives (${dataDir})`;
  if (free < NO_DISK) return { check: 'disk', status: 'fail', message, fix: 'free some space: LevelDB needs room to write and compact' };
  if (free < LOW_DISK || free < total * 0.05) return { check: 'disk', status: 'warn', message, fix: 'free some space, or set a --retention on large queues' };
  return { check: 'disk', status: 'ok', message };
}

/** The config file parses, and every setting (file or environment) has a valid value. */
function checkConfig(): Check[] {
  const file = configPath();
  let values;
  try {
    values = readConfig();
  } catch (err) {
    return [{ check: 'config', status: 'fail', message: (err as Error).message, fix: `fix or remove ${file}` }];
  }
  const checks: Check[] = [];
  for (const { key } of CONFIG_KEYS) {
    try {
      resolveSetting(key, values);
    } catch (err) {
      checks.push({ check: 'config', status: 'fail', message: (err as Error).message, fix: `\`discue config set ${key} ...\` or fix the variable` });
    }
  }
  if (checks.length > 0) return checks;
  const keys = Object.keys(values).length;
  return [{ check: 'config', status: 'ok', message: keys === 0 ? `${file}: none (defaults apply)` : `${file}: ${plural(keys, 'setting')}, all valid` }];
}

async function checkListener(listener: ListenerInfo): Promise<Check> {
  const name = listener.name ?? listener.id;
  const check = `listener ${name}`;
  const pause = `\`discue listener pause ${name}\``;
  // A paused or disabled listener gets nothing now: a problem there is a warning.
  const bad: CheckStatus = listener.state === 'active' ? 'fail' : 'warn';
  const state = listener.state === 'active' ? '' : ` (${listener.state})`;
  if (listener.kind === 'http') {
    const url = listener.url ?? '';
    try {
      // undici, as the daemon delivers with (fetch refuses "bad ports" such as 6000 that a webhook may use).
      const { request } = await import('undici');
      const response = await request(url, { method: 'HEAD', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await response.body.dump();
      const message = `${url} answers HTTP ${response.statusCode} to HEAD${state}`;
      if (response.statusCode === 410) return { check, status: 'warn', message, fix: '410 Gone disables the listener on delivery; remove it or fix the receiver' };
      return { check, status: 'ok', message };
    } catch (err) {
      const { code, name, message } = err as NodeJS.ErrnoException;
      const why = name === 'TimeoutError' ? `no answer within ${PROBE_TIMEOUT_MS / 1000}s` : (code ?? message);
      return { check, status: bad, message: `${url} is unreachable: ${why}${state}`, fix: `start the receiver, or ${pause}` };
    }
  }
  const cwd = listener.cwd ?? process.cwd();
  // A removed working directory fails every run as a missing program would (spawn ENOENT).
  if (!(await stat(cwd).then((info) => info.isDirectory(), () => false))) {
    return { check, status: bad, message: `its working directory ${cwd} does not exist${state}`, fix: `create it, or remove the listener and add it again from an existing directory, or ${pause}` };
  }
  const program = listener.shell ? '/bin/sh' : (listener.command?.[0] ?? '');
  const found = await findProgram(program, cwd);
  if (found === undefined) {
    const where = program.includes('/') ? `in ${cwd}` : 'on PATH';
    return { check, status: bad, message: `${program} is not an executable program ${where}${state}`, fix: `create it or \`chmod +x\` it, or ${pause}` };
  }
  return { check, status: 'ok', message: `runs ${found}${state}` };
}

/** Where an executable program is, the way the daemon's spawn finds it: a path from cwd, or a name on PATH. */
async function findProgram(program: string, cwd: string): Promise<string | undefined> {
  if (program === '') return undefined;
  const candidates = program.includes('/')
    ? [isAbsolute(program) ? program : resolve(cwd, program)]
    : (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, program));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
