/**
 * The backend matrix of the end-to-end tests: the same test, through the
 * real binary and daemon, once on LevelDB (the default: a directory in
 * DISCUE_HOME) and once on NATS JetStream (DISCUE_STORE=nats://…, one
 * single-node nats-server per describe block, shared by its tests).
 *
 *   const sb = useBackendSandbox('dq-http-');
 *   describeBackends('HTTP delivery', () => {
 *     it('…', async () => { … });
 *   });
 *
 * The NATS variant is skipped with a reason when nats-server is missing,
 * and fails under CI=true (natsAvailable). Tests sharing the server run one
 * after another (a file's tests are sequential), and each starts from an
 * empty server: everything the backend made is removed before each test.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
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

/** The backend of the describe block whose test runs now (set by describeBackends' hooks). */
let active: BackendUnderTest | undefined;
/** Sandboxes made by useBackendSandbox: each takes the running block's backend. */
const following: Sandbox[] = [];

function follow(sb: Sandbox): void {
  if (active === undefined) return;
  try {
    Object.assign(sb.env, active.env());
  } catch {
    // a fixture of another block: no sandbox in this test
  }
}

/**
 * `body` once per backend, each in its own describe titled `title [kind]`.
 * `only` restricts the matrix (a test file's LevelDB-only part says why next to it).
 */
export function describeBackends(title: string, body: (backend: BackendUnderTest) => void, only?: BackendKind[]): void {
  const block = (backend: BackendUnderTest) => {
    beforeEach(() => {
      active = backend;
      for (const sb of following) follow(sb);
    });
    afterEach(() => {
      active = undefined;
    });
    body(backend);
  };
  for (const kind of only ?? (['leveldb', 'nats'] as const)) {
    if (kind === 'leveldb') describe(`${title} [leveldb]`, () => block(leveldb()));
    else describe.runIf(natsRuns())(`${title} [nats]`, () => block(nats()));
  }
}

/** The backend the running test is on (inside a describeBackends block). */
export function currentBackend(): BackendUnderTest {
  if (active === undefined) throw new Error('currentBackend: only inside a test of a describeBackends block');
  return active;
}

/**
 * The sandbox fixture (useSandbox) on the backend of the running
 * describeBackends block: a fresh sandbox per test whose daemon runs on it.
 * It may be made at file level (helpers of the file share it) or inside the block.
 */
export function useBackendSandbox(prefix?: string): Sandbox {
  const sb = useSandbox(prefix);
  following.push(sb);
  beforeEach(() => follow(sb));
  return sb;
}
