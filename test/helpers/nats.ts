/**
 * NATS servers for tests: one node, or a three-node JetStream cluster, on
 * 127.0.0.1 with free ports and store directories in a temp dir (the layout
 * of shared/SCALEOUT.md, "A cluster on one machine for tests"). Nodes are
 * started and stopped by pid, never by name: other sessions on this machine
 * run their own servers.
 *
 * Use natsServer()/natsCluster() in beforeAll and `stop()` in afterAll; a
 * test that fails still reaches afterAll, and every node started is also
 * killed when the test process exits.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where nats-server is, or undefined when it is not installed. */
export function natsServerPath(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : undefined;
}

/**
 * Whether the NATS tests run here. CI installs nats-server (.ci/run), so
 * there a missing server is a failure; elsewhere the tests are skipped with
 * the reason printed.
 */
export function natsAvailable(what: string): boolean {
  if (natsServerPath() !== undefined) return true;
  if (process.env.CI) throw new Error(`nats-server is not installed, and CI must run ${what} (.ci/run installs it)`);
  console.warn(`skipping ${what}: nats-server is not installed (apt-get install nats-server)`);
  return false;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface NatsNode {
  name: string;
  /** Client URL, nats://127.0.0.1:PORT. */
  url: string;
  clientPort: number;
  httpPort: number;
  clusterPort?: number;
  storeDir: string;
  configFile: string;
  /** The running process, or undefined while stopped. */
  process?: ChildProcess;
  /** Everything the node printed (its log), for failure messages. */
  log: string[];
}

export interface NatsServers {
  nodes: NatsNode[];
  /** Client URLs of every node, comma-separated (discue's store setting). */
  urls: string;
  /** kill -9 (or another signal) one node, by pid; waits for it to exit. */
  kill(node: NatsNode, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped node again with the same config and store; waits for /healthz. */
  restart(node: NatsNode): Promise<void>;
  /** Stops every node and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHook = false;

function killAllOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const child of live) if (child.pid !== undefined) child.kill('SIGKILL');
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function healthy(node: NatsNode): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

function start(node: NatsNode, binary: string): void {
  const child = spawn(binary, ['-c', node.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  node.process = child;
  live.add(child);
  const keep = (chunk: Buffer): void => {
    node.log.push(chunk.toString('utf8'));
    if (node.log.length > 200) node.log.splice(0, node.log.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => {
    live.delete(child);
    if (node.process === child) node.process = undefined;
  });
}

async function stopNode(node: NatsNode, signal: NodeJS.Signals): Promise<void> {
  const child = node.process;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

/**
 * Starts `size` nodes (1: a single server; 3: a cluster whose nodes route
 * to each other), each config with `extraConfig` lines (authorization…),
 * and waits until each answers /healthz. For a cluster,
 * /healthz is 200 once JetStream is ready, which needs a meta leader.
 */
export async function natsServers(size = 1, timeoutMs = 30_000, extraConfig: string[] = []): Promise<NatsServers> {
  const binary = natsServerPath();
  if (binary === undefined) throw new Error('nats-server is not installed (apt-get install nats-server)');
  killAllOnExit();
  const dir = mkdtempSync(join(tmpdir(), 'discue-nats-'));
  const nodes: NatsNode[] = [];
  for (let i = 0; i < size; i++) {
    const clientPort = await freePort();
    const name = `n${i + 1}`;
    nodes.push({
      name,
      url: `nats://127.0.0.1:${clientPort}`,
      clientPort,
      httpPort: await freePort(),
      clusterPort: size > 1 ? await freePort() : undefined,
      storeDir: join(dir, name, 'store'),
      configFile: join(dir, `${name}.conf`),
      log: [],
    });
  }
  for (const node of nodes) {
    const lines = [
      `server_name: ${node.name}`,
      `listen: 127.0.0.1:${node.clientPort}`,
      `http: 127.0.0.1:${node.httpPort}`,
      `jetstream { store_dir: ${JSON.stringify(node.storeDir)} }`,
      ...extraConfig,
    ];
    if (size > 1) {
      const routes = nodes.map((n) => `nats-route://127.0.0.1:${n.clusterPort}`).join(', ');
      lines.push(`cluster { name: discue-test, listen: 127.0.0.1:${node.clusterPort}, routes: [${routes}] }`);
    }
    writeFileSync(node.configFile, lines.join('\n') + '\n');
  }
  const waitHealthy = (node: NatsNode): Promise<void> =>
    until(`nats-server ${node.name} (${node.url}) to be healthy`, () => healthy(node), timeoutMs, () => node.log.join(''));

  let stopped = false;
  const servers: NatsServers = {
    nodes,
    urls: nodes.map((n) => n.url).join(','),
    kill: (node, signal = 'SIGKILL') => stopNode(node, signal),
    async restart(node) {
      await stopNode(node, 'SIGKILL');
      start(node, binary);
      await waitHealthy(node);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(nodes.map((node) => stopNode(node, 'SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const node of nodes) start(node, binary);
    await Promise.all(nodes.map(waitHealthy));
  } catch (err) {
    await servers.stop();
    throw err;
  }
  return servers;
}
