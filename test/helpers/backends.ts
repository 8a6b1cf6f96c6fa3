/**
 * The backend matrix of the end-to-end tests: the same test, through the
 * real binary and daemon, once on LevelDB (the default: a directory in
 * DISCUE_HOME) and once on NATS JetStream (DISCUE_STORE=nats://…, one
 * single-node nats-server per describe block, shared by its tests).
 *
 *   describeBackends('HTTP delivery', (backend) => {
 *     const sb = useBackendSandbox(backend, 'dq-http-');
 *     it('…', async () => { … });
 *   });
 *
 * The NATS variant is skipped with a reason when nats-server is missing,
 * and fails under CI=true (natsAvailable). Tests sharing the server run one
 * after another (a file's tests are sequential), and each starts from an
 * empty server: everything the backend made is removed before each test.
 */
import { afterAll, beforeAll, beforeEach, describe } from 'vitest';
import { natsAvailable, natsServers } from './nats.js';
import type { NatsServers } from './nats.js';
import { removeNamespace } from './nats-clean.js';
import { Sandbox, useSandbox } from './sandbox.js';

export type BackendKind = 'leveldb' | 'nats';

export interface BackendUnderTest {
  readonly kind: BackendKind;
  /** What a sandbox's environment needs to run its daemon on this backend (empty for LevelDB). Only inside a test or hook. */
  env(): Record<string, string>;
  /** A new sandbox on this backend (for tests that make more than one, or manage their own). */
  sandbox(prefix?: string): Sandbox;
}

/** The namespace the daemon uses when none is configured (src/backend/nats/store.ts). */
const DAEMON_NAMESPACE = 'discue';

let natsChecked: boolean | undefined;

/** Whether the NATS variants run here; asked once per file, so the reason is printed once. */
function natsRuns(): boolean {
  natsChecked ??= natsAvailable('the NATS variants of the end-to-end tests');
  return natsChecked;
}

function leveldb(): BackendUnderTest {
  return {
    kind: 'leveldb',
    env: () => ({}),
    sandbox: (prefix) => new Sandbox(prefix),
  };
}

/** Registers the server's hooks in the enclosing describe: started before its first test, emptied before each, stopped after the last. */
function nats(): BackendUnderTest {
  let servers: NatsServers | undefined;
  beforeAll(async () => {
    servers = await natsServers(1);
  });
  afterAll(async () => {
    await servers?.stop();
  });
  // Before each test rather than after: by then the previous test's daemons are killed (the
  // sandbox's afterEach, whichever order the hooks run in), so none can make a bucket again
  // behind the removal and hand the next test a catalogue it did not write.
  beforeEach(async () => {
    await removeNamespace(urls(), DAEMON_NAMESPACE);
  });
  const urls = (): string => {
    if (servers === undefined) throw new Error('the NATS server runs only inside the tests of its describe block');
    return servers.urls;
  };
  const env = (): Record<string, string> => ({ DISCUE_STORE: urls() });
  return {
    kind: 'nats',
    env,
    sandbox(prefix) {
      const sb = new Sandbox(prefix);
      Object.assign(sb.env, env());
      return sb;
    },
  };
}

/**
 * `body` once per backend, each in its own describe titled `title [kind]`.
 * `only` restricts the matrix (a test file's LevelDB-only part says why next to it).
 */
export function describeBackends(title: string, body: (backend: BackendUnderTest) => void, only?: BackendKind[]): void {
  for (const kind of only ?? (['leveldb', 'nats'] as const)) {
    if (kind === 'leveldb') describe(`${title} [leveldb]`, () => body(leveldb()));
    else describe.runIf(natsRuns())(`${title} [nats]`, () => body(nats()));
  }
}

/** The sandbox fixture (useSandbox) on a backend: a fresh sandbox per test whose daemon runs on it. */
export function useBackendSandbox(backend: BackendUnderTest, prefix?: string): Sandbox {
  const sb = useSandbox(prefix);
  beforeEach(() => {
    Object.assign(sb.env, backend.env());
  });
  return sb;
}
