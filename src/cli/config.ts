/**
 * User configuration (`discue config`): defaults for the CLI, in
 * $XDG_CONFIG_HOME/discue/config.json (~/.config/discue/config.json).
 * Precedence everywhere: flag > environment > config file > default.
 *
 * Reading is a plain JSON read on every command (no library on the start-up
 * path); writing goes through `conf`, which validates and writes atomically.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { DiscueError } from '../protocol/errors.js';
import { formatDuration, parseDuration } from '../client/duration.js';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS, MOST_ATTEMPTS } from '../protocol/defaults.js';
import { resolvePaths, userHome } from '../protocol/paths.js';
import { parseListen } from '../http/listen.js';
import { parseReplicas, parseStore } from '../protocol/store.js';

export interface ConfigKey {
  key: string;
  env: string;
  description: string;
  /** The default as documented in --help. */
  default: string;
  /** The default as a value, where it depends on the environment (the socket lives in DISCUE_HOME). */
  defaultValue?: (env: NodeJS.ProcessEnv) => string;
  /** Checks and normalises a value given by a user. */
  parse(value: string): string | number;
}

const choice =
  (key: string, values: string[]) =>
  (value: string): string => {
    if (!values.includes(value)) throw new DiscueError('INVALID_ARGUMENT', `${key} takes one of: ${values.join(', ')}`);
    return value;
  };

export const CONFIG_KEYS: ConfigKey[] = [
  {
    key: 'output',
    env: 'DISCUE_OUTPUT',
    description: 'default output format: human or json (json = as if --json were given)',
    default: 'human',
    parse: choice('output', ['human', 'json']),
  },
  {
    key: 'color',
    env: 'DISCUE_COLOR',
    description: 'colour: auto (on a terminal), always or never (NO_COLOR and --no-color win)',
    default: 'auto',
    parse: choice('color', ['auto', 'always', 'never']),
  },
  {
    key: 'socket',
    env: 'DISCUE_SOCKET',
    description: 'daemon socket path',
    default: '$DISCUE_HOME/run/discue.sock',
    defaultValue: (env) => resolvePaths({ env: { ...env, DISCUE_SOCKET: '' } }).socket,
    parse: (value) => {
      if (value.trim() === '') throw new DiscueError('INVALID_ARGUMENT', 'socket must be a path');
      // Stored absolute: a relative path would mean a different socket in every directory.
      return resolve(value);
    },
  },
  {
    key: 'store',
    env: 'DISCUE_STORE',
    description: 'where the daemon keeps its data: a LevelDB directory, or NATS JetStream servers (nats://host:4222,nats://host2:4222)',
    default: '$DISCUE_HOME/data',
    defaultValue: (env) => resolvePaths({ env }).dataDir,
    // Stored as parsed: a directory absolute, as the socket is.
    parse: (value) => parseStore(value).location,
  },
  {
    key: 'store.replicas',
    env: 'DISCUE_STORE_REPLICAS',
    description: 'NATS store: replicas of every stream and bucket, 1 to 5 (set when a queue is created)',
    default: '1',
    parse: (value) => parseReplicas(value),
  },
  {
    key: 'store.creds',
    env: 'DISCUE_STORE_CREDS',
    description: 'NATS store: a .creds file (JWT and nkey seed) to connect with',
    default: '',
    parse: (value) => {
      if (value.trim() === '') throw new DiscueError('INVALID_ARGUMENT', 'store.creds must be a file');
      return resolve(value);
    },
  },
  {
    key: 'store.ca',
    env: 'DISCUE_STORE_CA',
    description: 'NATS store over tls://: a CA file the servers\' certificates chain to',
    default: '',
    parse: (value) => {
      if (value.trim() === '') throw new DiscueError('INVALID_ARGUMENT', 'store.ca must be a file');
      return resolve(value);
    },
  },
  {
    key: 'listener.timeout',
    env: 'DISCUE_LISTENER_TIMEOUT',
    description: 'default --timeout of `listener add` (per attempt)',
    default: formatDuration(DEFAULT_TIMEOUT_MS),
    parse: (value) => {
      parseDuration(value, 'listener.timeout');
      return value;
    },
  },
  {
    key: 'listener.maxAttempts',
    env: 'DISCUE_LISTENER_MAX_ATTEMPTS',
    description: 'default --max-attempts of `listener add`',
    default: String(DEFAULT_MAX_ATTEMPTS),
    parse: (value) => {
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MOST_ATTEMPTS) {
        throw new DiscueError('INVALID_ARGUMENT', `listener.maxAttempts takes a whole number from 1 to ${MOST_ATTEMPTS}`);
      }
      return Number(value);
    },
  },
  {
    key: 'http.listen',
    env: 'DISCUE_HTTP_LISTEN',
    description: 'serve the HTTP API on HOST:PORT (loopback only unless TLS or --http-insecure); off = no HTTP API',
    default: 'off',
    parse: (value) => {
      if (value !== 'off') parseListen(value);
      return value;
    },
  },
  {
    key: 'http.tlsCert',
    env: 'DISCUE_HTTP_TLS_CERT',
    description: 'PEM certificate file: the HTTP API speaks HTTPS (with http.tlsKey)',
    default: 'none',
    parse: tlsFile('http.tlsCert'),
  },
  {
    key: 'http.tlsKey',
    env: 'DISCUE_HTTP_TLS_KEY',
    description: 'PEM private key file of http.tlsCert',
    default: 'none',
    parse: tlsFile('http.tlsKey'),
  },
];

function tlsFile(key: string): (value: string) => string {
  return (value) => {
    if (value === 'none') return value;
    if (value.trim() === '') throw new DiscueError('INVALID_ARGUMENT', `${key} must be a file path, or none`);
    // Stored absolute: the daemon may start in another directory.
    return resolve(value);
  };
}

export function configKey(key: string): ConfigKey {
  const found = CONFIG_KEYS.find((k) => k.key === key);
  if (!found) {
    throw new DiscueError('INVALID_ARGUMENT', `unknown config key "${key}"; keys: ${CONFIG_KEYS.map((k) => k.key).join(', ')}`);
  }
  return found;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  // The XDG spec: a relative XDG_CONFIG_HOME is invalid and is ignored.
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(userHome(), '.config');
  return join(base, 'discue');
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'config.json');
}

export type ConfigValues = Record<string, string | number>;

/** The config file's values, flattened to "a.b" keys; {} if there is none. A broken file is an error. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): ConfigValues {
  const path = configPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return {};
    throw new DiscueError('INVALID_ARGUMENT', `cannot read the config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DiscueError('INVALID_ARGUMENT', `the config file ${path} is not valid JSON (${(err as Error).message}); fix or delete it`);
  }
  // conf would write keys into an array or fail on a string; say so instead.
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DiscueError('INVALID_ARGUMENT', `the config file ${path} must hold a JSON object; fix or delete it`);
  }
  const out: Record<string, string | number> = {};
  const walk = (node: unknown, prefix: string) => {
    if (typeof node !== 'object' || node === null) return;
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (typeof v === 'string' || typeof v === 'number') out[key] = v;
      else walk(v, key);
    }
  };
  walk(value, '');
  return out;
}

/**
 * The config file for a command that must go on without it: a broken file
 * is reported as a warning (the caller prints it) and counts as empty.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): { values: ConfigValues; warning?: string } {
  try {
    return { values: readConfig(env) };
  } catch (err) {
    return { values: {}, warning: (err as Error).message };
  }
}

export interface Setting {
  value: string;
  source: 'env' | 'config' | 'default';
}

/**
 * The effective value of a key after env > config > default (flags are
 * applied by the caller). A value from the environment or the file is checked
 * as `config set` checks it; a bad one is an error that names where it came
 * from, rather than a silent fall back to the default.
 */
export function resolveSetting(key: string, config: ConfigValues, env: NodeJS.ProcessEnv = process.env): Setting {
  const spec = configKey(key);
  const fromEnv = env[spec.env];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { value: checked(spec, fromEnv, `the environment variable ${spec.env}`), source: 'env' };
  }
  const fromConfig = config[key];
  if (fromConfig !== undefined) {
    return { value: checked(spec, String(fromConfig), `${key} in the config file ${configPath(env)}`), source: 'config' };
  }
  return { value: spec.defaultValue?.(env) ?? spec.default, source: 'default' };
}

function checked(spec: ConfigKey, value: string, where: string): string {
  try {
    return String(spec.parse(value));
  } catch (err) {
    if (!(err instanceof DiscueError)) throw err;
    throw new DiscueError(err.code, `${where} is ${JSON.stringify(value)}: ${err.message}`, { cause: err });
  }
}
