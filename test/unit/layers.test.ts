/**
 * Layers point one way: cli → client → protocol, and inside the daemon
 * daemon → delivery → backend → protocol. Each folder of src/ may import
 * only the folders listed here; the few edges against the grain are listed
 * with why, and are dynamic imports (loaded only on the path that uses them).
 * A new edge fails here until it is either removed or argued for below.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sandbox.js';

const SRC = join(ROOT, 'src');

/** Folder (or top-level module) → what its static imports may reach. */
const ALLOWED: Record<string, string[]> = {
  index: ['client', 'protocol', 'version'],
  cli: ['client', 'protocol', 'ui', 'version', 'http'],
  ui: ['cli', 'protocol'],
  client: ['protocol', 'version'],
  daemon: ['delivery', 'backend', 'observe', 'protocol', 'version'],
  http: ['daemon', 'backend', 'observe', 'protocol', 'version'],
  delivery: ['backend', 'observe', 'protocol', 'version'],
  backend: ['protocol'],
  observe: ['protocol'],
  protocol: [],
  version: [],
};

/**
 * Against the grain, dynamic only:
 * - cli → daemon: `daemon start --foreground` and `daemon repair` run the daemon's code in the CLI's process.
 * - cli → delivery: `listen --exec` runs the command on the listening side, with the daemon's command sender.
 * - daemon → http: the daemon hosts the HTTP API only when `--http` is set.
 */
const DYNAMIC_ONLY: Record<string, string[]> = {
  cli: ['daemon', 'delivery'],
  daemon: ['http'],
};

/**
 * cli → http, static: only the listen-address parser (`--http` is validated
 * by the CLI before a daemon is spawned); the server itself stays lazy
 * (test/unit/http-lazy.test.ts).
 */
const STATIC_EXCEPTIONS = new Set(['cli → http/listen.ts']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.tsx?$/.test(name) ? [path] : [];
  });
}

/** src/cli/commands/x.ts → cli; src/index.ts → index. */
function layerOf(path: string): string {
  return relative(SRC, path).split('/')[0]!.replace(/\.(tsx?|js)$/, '');
}

interface Edge {
  from: string;
  file: string;
  to: string;
  target: string;
  dynamic: boolean;
  typeOnly: boolean;
}

function edges(): Edge[] {
  const found: Edge[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const from = layerOf(file);
    const add = (spec: string, dynamic: boolean, typeOnly: boolean) => {
      if (!spec.startsWith('.')) return;
      const absolute = resolve(dirname(file), spec);
      const to = layerOf(absolute);
      if (to === from) return;
      found.push({ from, file: relative(SRC, file), to, target: relative(SRC, absolute).replace(/\.js$/, '.ts'), dynamic, typeOnly });
    };
    for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)';/gms)) add(m[2]!, false, m[1] !== undefined);
    for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) add(m[1]!, true, false);
  }
  return found;
}

describe('layers', () => {
  const all = edges();

  it('finds the imports it checks (the scanner is not blind)', () => {
    expect(all.some((e) => e.from === 'cli' && e.to === 'client')).toBe(true);
    expect(all.some((e) => e.from === 'delivery' && e.to === 'backend')).toBe(true);
    expect(all.some((e) => e.from === 'daemon' && e.to === 'http' && e.dynamic)).toBe(true);
  });

  it('every folder imports only the layers below it, types included', () => {
    const wrong = all
      .filter((e) => !ALLOWED[e.from]?.includes(e.to) && !DYNAMIC_ONLY[e.from]?.includes(e.to))
      .map((e) => `${e.file} → ${e.target}`);
    expect(wrong).toEqual([]);
  });

  it('the edges against the grain are dynamic imports (or type-only), never paid for at start-up', () => {
    const eager = all
      .filter((e) => DYNAMIC_ONLY[e.from]?.includes(e.to) && !e.dynamic && !e.typeOnly)
      .map((e) => `${e.file} → ${e.target}`);
    expect(eager).toEqual([]);
  });

  it('the CLI reaches src/http/ statically only for the listen-address parser', () => {
    const eager = all
      .filter((e) => e.from === 'cli' && e.to === 'http' && !e.dynamic && !e.typeOnly)
      .filter((e) => !STATIC_EXCEPTIONS.has(`cli → ${e.target.slice(e.target.indexOf('http/'))}`))
      .map((e) => `${e.file} → ${e.target}`);
    expect(eager).toEqual([]);
  });
});
