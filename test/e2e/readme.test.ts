/**
 * The README's examples that claim to run on a fresh machine (fenced as
 * `sh runnable`) do: each one, pasted into bash as it is, exits 0 and shows
 * what its `# prints:` comments promise.
 */
import { describe, expect, it } from 'vitest';
import { freePort, runBlock, runnableBlocks } from '../helpers/readme.js';
import { useSandbox } from '../helpers/sandbox.js';

const blocks = runnableBlocks();

describe('README runnable blocks', () => {
  const sb = useSandbox('discue-readme-');

  it('finds the first example, the webhook receiver and the CI recipe', () => {
    const headings = blocks.map((b) => b.heading);
    expect(headings[0]).toMatch(/^The bookshop/);
    expect(headings).toContain('discue in CI');
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    // The first example shows the event arrive; a block that promises nothing would prove little.
    expect(blocks[0]!.expected).toContain('Order 1001 shipped');
  });

  it('the parser reads the marker, the prints comments and skips other blocks', () => {
    const parsed = runnableBlocks(
      ['# A', '```sh', 'not this', '```', '## B', '```sh runnable', 'echo hi   # prints: hi', '```', '```json', '{}', '```'].join('\n'),
    );
    expect(parsed).toEqual([{ heading: 'B', line: 6, script: 'echo hi   # prints: hi\n', expected: ['hi'] }]);
  });

  it.each(blocks.map((b) => [`${b.heading} (README.md:${b.line})`, b] as const))('%s runs as written', { timeout: 120_000 }, async (_name, block) => {
    // A free port for a block that starts a receiver on ${PORT:-8080}: tests run side by side.
    const result = await runBlock(sb, block.script, { env: { PORT: String(await freePort()) } });
    const where = `README.md:${block.line}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
    expect(result.code, where).toBe(0);
    for (const text of block.expected) expect(result.stdout, where).toContain(text);
  });
});
