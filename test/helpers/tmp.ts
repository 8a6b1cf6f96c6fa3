/**
 * A scratch directory for one test: made under the system temp dir and
 * removed when the test ends, whatever it did (onTestFinished), so no file
 * wires its own afterEach for it. Call it in the test or in a beforeEach.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';

export function tmpDir(prefix = 'discue-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
