import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    exclude: ['test/bench/**', 'node_modules/**'],
    // E2E tests spawn the real binary and daemon; a busy 2-core machine needs room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Every file is independent (a sandbox per test: its own HOME, DISCUE_HOME, socket, port 0,
    // tmux session and npm prefix), so files run side by side. Most of an e2e file's time is spent
    // waiting (for a daemon, a retry delay, a child process), not computing, so a third worker
    // fills that time even on 2 cores: 6 mid-sized e2e files took 117/246 s with 2 workers and
    // 122/193 s with 3 (two runs each, load 12-22). Vitest starts the slowest files first (from
    // its results cache), so the run does not end on one long file.
    maxWorkers: 3,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
