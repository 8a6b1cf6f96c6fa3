/**
 * The README's runnable examples: fenced blocks whose info string is
 * `sh runnable` (GitHub highlights them as sh and ignores the second word).
 * A line's `# prints: TEXT` comment says what the block's stdout must show.
 * Each block runs with bash, as a user would paste it, in a sandbox: its own
 * HOME and DISCUE_HOME, an empty working directory, and `discue` on PATH as a
 * link to this repository's bin/discue.cjs.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import type { RunResult, Sandbox } from './sandbox.js';
import { BIN, ROOT, collect } from './sandbox.js';

export interface ReadmeBlock {
  /** The nearest heading above the block. */
  heading: string;
  /** 1-based line of the opening fence. */
  line: number;
  script: string;
  /** What stdout must contain, from `# prints: TEXT` comments. */
  expected: string[];
}

export function runnableBlocks(readme = readFileSync(join(ROOT, 'README.md'), 'utf8')): ReadmeBlock[] {
  const blocks: ReadmeBlock[] = [];
  const lines = readme.split('\n');
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '');
    const fence = /^(`{3,})(.*)$/.exec(line);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith(fence[1]!) && l.trim() === fence[1]);
    if (end === -1) throw new Error(`README.md:${i + 1}: unclosed code block`);
    const info = fence[2]!.trim().split(/\s+/);
    if (info.includes('runnable')) {
      const body = lines.slice(i + 1, end);
      blocks.push({
        heading,
        line: i + 1,
        script: body.join('\n') + '\n',
        expected: body.flatMap((l) => {
          const m = /#\s*prints:\s*(.+?)\s*$/.exec(l);
          return m ? [m[1]!] : [];
        }),
      });
    }
    i = end;
  }
  return blocks;
}

/** A port nobody listens on right now (for blocks that start a receiver on $PORT). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs a block with `bash -e` (so a failing command fails the block, as in a
 * CI step) in `cwd` (default: a fresh directory in the sandbox). Whatever
 * the block left running in the background is killed with its process group.
 */
export async function runBlock(
  sb: Sandbox,
  script: string,
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<RunResult> {
  const bin = join(sb.dir, 'path');
  if (!existsSync(bin)) {
    mkdirSync(bin);
    symlinkSync(BIN, join(bin, 'discue'));
  }
  const cwd = options.cwd ?? join(sb.dir, 'work');
  mkdirSync(cwd, { recursive: true });
  const file = join(sb.dir, `block-${Date.now()}-${Math.random().toString(36).slice(2)}.sh`);
  writeFileSync(file, script);
  const child = spawn('bash', ['-e', file], {
    cwd,
    detached: true,
    env: {
      ...sb.env,
      // `discue` from this repository first; then the node running the tests
      // (bin/discue.cjs is `#!/usr/bin/env node`), then the usual tools.
      PATH: [bin, dirname(process.execPath), sb.env.PATH].join(':'),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    return await collect(child, { timeoutMs: options.timeoutMs ?? 90_000 });
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
}
