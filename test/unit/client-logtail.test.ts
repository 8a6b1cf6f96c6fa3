import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { tailFile, withLogTail } from '../../src/client/logtail.js';
import { tmpDir } from '../helpers/tmp.js';

describe('daemon log tail', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('discue-tail-');
  });

  it('returns the last lines, without trailing newlines', async () => {
    const file = join(dir, 'daemon.log');
    writeFileSync(file, Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n') + '\n\n');
    await expect(tailFile(file, 3)).resolves.toBe('line 38\nline 39\nline 40');
  });

  it('reads only the end of a big log', async () => {
    const file = join(dir, 'daemon.log');
    writeFileSync(file, 'x'.repeat(1024 * 1024) + '\nthe end\n');
    const tail = await tailFile(file, 2);
    expect(tail.endsWith('\nthe end')).toBe(true);
    expect(tail.length).toBeLessThanOrEqual(64 * 1024);
  });

  it('is empty for a missing log, and then adds nothing to the message', async () => {
    expect(await tailFile(join(dir, 'missing.log'))).toBe('');
    expect(await withLogTail('the daemon died', join(dir, 'missing.log'))).toBe('the daemon died');
  });

  it('appends the tail, naming the log', async () => {
    const file = join(dir, 'daemon.log');
    writeFileSync(file, 'started\nfatal: disk full\n');
    const message = await withLogTail('the daemon died', file);
    expect(message).toBe(`the daemon died\n--- last lines of ${file} ---\nstarted\nfatal: disk full`);
  });
});
