#!/usr/bin/env node
// Thin entry: answer --version before loading anything, then hand over to the CLI.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(pkg.version + '\n');
} else {
  const { main } = await import('../dist/cli/main.js');
  // `--version --json` is a document for scripts: the same as `discue version --json` (CLI and daemon).
  const versionJson = args.length === 2 && args.includes('--json') && (args.includes('--version') || args.includes('-V'));
  await main(versionJson ? [...process.argv.slice(0, 2), 'version', '--json'] : process.argv);
}
