/**
 * The HTTP API costs nothing unless it is on: no module of src/http/ (but
 * the address check, listen.ts) and no HTTP-only package is reachable by
 * static imports from the CLI's start-up, `discue publish` or the daemon;
 * the daemon loads the server with a dynamic import only when asked to.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/sandbox.js';

/** Every module reachable from entry through static `import … from` (type-only imports left out), and the packages named. */
function staticClosure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)';/gms)) {
      if (m[1]) continue;
      const spec = m[2]!;
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec).replace(/\.js$/, existsTs(resolve(dirname(file), spec))));
      else if (!spec.startsWith('node:')) packages.add(spec);
    }
  }
  return { files, packages };
}

function existsTs(path: string): string {
  try {
    readFileSync(path.replace(/\.js$/, '.tsx'));
    return '.tsx';
  } catch {
    return '.ts';
  }
}

const SRC = join(ROOT, 'src');
const HTTP_ONLY = ['prom-client'];

describe('the HTTP API is loaded only when it is on', () => {
  for (const entry of ['cli/main.ts', 'cli/commands/publish.ts', 'cli/commands/daemon.ts', 'daemon/server.ts']) {
    it(`${entry} reaches no HTTP server module statically`, () => {
      const { files, packages } = staticClosure(join(SRC, entry));
      expect(files.size).toBeGreaterThan(1);
      const http = [...files].filter((f) => f.startsWith(join(SRC, 'http') + '/'));
      expect(http.map((f) => f.slice(SRC.length + 1)).filter((f) => f !== 'http/listen.ts')).toEqual([]);
      for (const name of HTTP_ONLY) expect(packages.has(name), name).toBe(false);
    });
  }

  it('the daemon imports the server dynamically, and the server reaches prom-client', () => {
    expect(readFileSync(join(SRC, 'daemon/server.ts'), 'utf8')).toContain("await import('../http/server.js')");
    expect(staticClosure(join(SRC, 'http/server.ts')).packages.has('prom-client')).toBe(true);
  });
});
