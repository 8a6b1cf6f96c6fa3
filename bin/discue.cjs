#!/usr/bin/env node
// Thin entry: answer --version before loading anything, then run the CLI,
// which is one script (dist/cli/bundle.cjs, see scripts/bundle.mjs)
// compiled from V8's code cache when there is one: start-up is what every
// scripted call pays, and compiling the CLI was the largest part of it.
// CommonJS, not a module: Node's ESM loader (resolve, package.json lookups,
// module jobs) cost an entry script ~10 ms at every start here, for nothing.
const { readFileSync, renameSync, writeFileSync } = process.getBuiltinModule('node:fs');
const here = process.getBuiltinModule('node:url').pathToFileURL(__filename);

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', here), 'utf8'));
  process.stdout.write(pkg.version + '\n');
} else {
  const { main } = load(new URL('../dist/cli/bundle.cjs', here));
  // `--version --json` is a document for scripts: the same as `discue version --json` (CLI and daemon).
  const versionJson = args.length === 2 && args.includes('--json') && (args.includes('--version') || args.includes('-V'));
  void main(versionJson ? [...process.argv.slice(0, 2), 'version', '--json'] : process.argv);
}

function load(url) {
  const { Script } = process.getBuiltinModule('node:vm');
  const file = decodeURIComponent(url.pathname);
  const cacheFile = `${file}.cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // None yet: this run writes it.
  }
  const source = readFileSync(file, 'utf8');
  const script = new Script(`(function (exports, require, module, __bundleUrl, __import) {${source}\n})`, { filename: file, cachedData });
  if (script.cachedDataRejected !== false) {
    // Missing, or made by another Node: written at exit, with every function
    // this run compiled. In a read-only install it stays missing; no harm.
    process.once('exit', () => {
      try {
        writeFileSync(`${cacheFile}.${process.pid}`, script.createCachedData());
        renameSync(`${cacheFile}.${process.pid}`, cacheFile);
      } catch {
        // The cache is an optimisation only.
      }
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, builtin, module, url.href, (specifier) =>
    import(specifier.startsWith('.') ? new URL(specifier, url).href : specifier),
  );
  return module.exports;
}

/**
 * The bundle's require(): Node's built-ins only. These two are taken on
 * first use, not at start: most commands never spawn, and the client needs
 * fs/promises only on its error paths.
 */
function builtin(id) {
  if (id !== 'node:child_process' && id !== 'node:fs/promises') return process.getBuiltinModule(id);
  let mod;
  return new Proxy({}, { get: (_, key) => (mod ??= process.getBuiltinModule(id))[key] });
}
