/**
 * `npm run build`, second step: the CLI as one file, dist/cli/bundle.cjs,
 * which bin/discue.cjs compiles with V8's code cache (see there).
 *
 * Every command pays for Node's module loading before it does anything: for
 * `discue publish` that was ~30 files resolved, read and linked one by one,
 * commander through the CommonJS loader, then every function compiled on
 * first call. One script, compiled from a code cache, skips all of it.
 *
 * The bundle is a function body, not a module: ES modules get no code cache
 * on Node 20. It is called with
 *   (exports, require, module, __bundleUrl, __import)
 * - require: Node's built-ins (and nothing else: npm packages are not
 *   require()d, commander is inlined);
 * - __bundleUrl: its own file URL, for `import.meta.url` (bin/ is found from
 *   it: the bundle sits in dist/cli/ as the sources sit in src/cli/ and
 *   src/client/, so their relative paths hold);
 * - __import: import() as bin/discue.cjs does it, for what stays outside: a
 *   script compiled from a code cache has no import() of its own.
 *
 * What stays outside, loaded from dist/ (tsc) or node_modules when a command
 * needs it: the daemon side (daemon/, delivery/, backend/: they open LevelDB
 * and spawn helpers from files next to their own), the top UI (ink, react),
 * and every npm package but commander. Such a module imported statically
 * from CLI code would be require()d at start: the build refuses that.
 */
import { build } from 'esbuild';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(ROOT, 'src');
const OUT = join(ROOT, 'dist', 'cli', 'bundle.cjs');
/** Source folders the bundle imports from dist/ instead of inlining. */
const OUTSIDE = ['daemon', 'delivery', 'backend', 'ui'].map((d) => join(SRC, d) + sep);
/** ... except these, plain code the CLI uses too (`listener add --exec` splits its command line, checks a backoff bound). */
const SHARED = [join(SRC, 'delivery', 'argv'), join(SRC, 'delivery', 'backoff')];
/** npm packages inlined: small, and on every command's path. */
const INLINED = new Set(['commander']);
/** The daemon, bundled too (ES module: it starts once, a code cache matters less there). */
const DAEMON_ENTRY = join(SRC, 'daemon', 'server');
const DAEMON_OUT = join(ROOT, 'dist', 'daemon', 'bundle.js');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

const layout = {
  name: 'discue-layout',
  setup(b) {
    // Our own module from the daemon side: the tsc output, at its path relative to the bundle.
    b.onResolve({ filter: /^\.\.?\// }, ({ path, resolveDir }) => {
      const source = join(resolveDir, path).replace(/\.js$/, '');
      if (SHARED.includes(source) || !OUTSIDE.some((dir) => source.startsWith(dir))) return undefined;
      const target = source === DAEMON_ENTRY ? DAEMON_OUT : join(ROOT, 'dist', relative(SRC, source)) + '.js';
      return { path: './' + relative(dirname(OUT), target).split(sep).join('/'), external: true };
    });
    b.onResolve({ filter: /^[^./]/ }, ({ path }) => (path.startsWith('node:') || INLINED.has(path) ? undefined : { path, external: true }));
    // The version is fixed at build time: no package.json to find and read at run time.
    b.onLoad({ filter: /[/\\]src[/\\]version\.ts$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(version)};`, loader: 'ts' }));
  },
};

const result = await build({
  entryPoints: [join(SRC, 'cli', 'main.ts')],
  outfile: OUT,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  define: { 'import.meta.url': '__bundleUrl' },
  plugins: [layout],
  metafile: true,
  write: false,
  logLevel: 'warning',
  legalComments: 'none',
});

const output = result.metafile.outputs[relative(ROOT, OUT).split(sep).join('/')];
const eager = output.imports.filter((i) => i.external && i.kind !== 'dynamic-import' && !i.path.startsWith('node:'));
if (eager.length > 0) {
  throw new Error(`the CLI bundle would load these at every start: ${eager.map((i) => i.path).join(', ')}; import them with import() where they are used, or list plain code without imports of its own in SHARED (scripts/bundle.mjs)`);
}
// Every import() (esbuild keeps them as written, with a string) becomes __import().
const dynamic = output.imports.filter((i) => i.kind === 'dynamic-import').length;
let text = result.outputFiles[0].text;
let replaced = 0;
text = text.replace(/\bimport\((?=")/g, () => (replaced++, '__import('));
if (replaced !== dynamic) throw new Error(`expected ${dynamic} import() calls in the bundle, found ${replaced}`);
writeFileSync(OUT, text);
/**
 * The daemon's code finds files next to its own (the spawner's process, the
 * schema worker): each source's import.meta.url becomes the URL of its tsc
 * output, where those files are.
 */
const ownUrls = {
  name: 'discue-own-urls',
  setup(b) {
    b.onLoad({ filter: /[/\\]src[/\\].*\.ts$/ }, ({ path }) => {
      const contents = readFileSync(path, 'utf8');
      if (!contents.includes('import.meta.url')) return undefined;
      const compiled = './' + relative(dirname(DAEMON_OUT), join(ROOT, 'dist', relative(SRC, path))).split(sep).join('/').replace(/\.ts$/, '.js');
      return { contents: contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(compiled)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

/**
 * The NATS backend stays outside the daemon bundle, loaded from its tsc
 * output by backend/index.ts's import() only for a NATS store: bundled, its
 * client libraries would be imported at the top of the bundle, at every
 * daemon start (test/unit/backend-nats-lazy.test.ts checks).
 */
const natsOutside = {
  name: 'discue-nats-outside',
  setup(b) {
    b.onResolve({ filter: /load-nats\.js$/ }, ({ path, resolveDir }) => {
      const source = join(resolveDir, path).replace(/\.js$/, '');
      const target = join(ROOT, 'dist', relative(SRC, source)) + '.js';
      return { path: './' + relative(dirname(DAEMON_OUT), target).split(sep).join('/'), external: true };
    });
  },
};

/**
 * classic-level and its plain-JS dependencies, inlined into the daemon
 * bundle: loaded from node_modules they were 34 files resolved, read and
 * compiled one by one at every daemon start (14.5 ms here; 5.3 ms as one
 * piece). Only its native binding stays outside: node-gyp-build finds it in
 * classic-level's own directory, wherever npm put it, as binding.js did.
 * Every other package stays in node_modules.
 */
const LEVEL_PACKAGES = new Set(['classic-level', 'abstract-level', 'level-supports', 'level-transcoder', 'module-error', 'maybe-combine-errors']);
const levelInlined = {
  name: 'discue-level-inlined',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, ({ path }) => {
      if (path.startsWith('node:')) return undefined;
      const name = path.startsWith('@') ? path.split('/').slice(0, 2).join('/') : path.split('/')[0];
      return LEVEL_PACKAGES.has(name) ? undefined : { path, external: true };
    });
    b.onResolve({ filter: /^\.\/binding(\.js)?$/ }, ({ resolveDir }) =>
      /[/\\]classic-level$/.test(resolveDir) ? { path: 'classic-level-binding', namespace: 'discue-binding' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'discue-binding' }, () => ({
      contents: "const { dirname } = require('node:path');\nmodule.exports = require('node-gyp-build')(dirname(require.resolve('classic-level/package.json')));\n",
      loader: 'js',
    }));
  },
};

/**
 * Split at import(): what the daemon loads only when asked (the HTTP API and
 * prom-client under it, ~35 ms of module loading) is a chunk of its own,
 * not part of every daemon start. Chunks sit next to the bundle, so the
 * relative URLs ownUrls writes hold in them too.
 */
const DAEMON_DIR = dirname(DAEMON_OUT);
for (const file of readdirSync(DAEMON_DIR)) if (/^chunk-.*\.js$/.test(file)) rmSync(join(DAEMON_DIR, file));
const daemon = await build({
  entryPoints: { bundle: DAEMON_ENTRY + '.ts' },
  outdir: DAEMON_DIR,
  splitting: true,
  chunkNames: 'chunk-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  plugins: [ownUrls, natsOutside, levelInlined],
  // The inlined CommonJS (classic-level's) calls require(): for built-ins and
  // its binding. A module has none of its own; this one resolves from dist/daemon/.
  banner: { js: "import { createRequire as __discueRequire } from 'node:module'; const require = __discueRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});

const daemonEager = daemon.metafile.outputs[relative(ROOT, DAEMON_OUT).split(sep).join('/')].imports.filter((i) => i.external && i.kind !== 'dynamic-import' && i.path.startsWith('@nats-io/'));
if (daemonEager.length > 0) throw new Error(`the daemon bundle would load the NATS client at every start: ${daemonEager.map((i) => i.path).join(', ')}`);
/** Static imports of the bundle and of the chunks it imports statically: what every daemon start loads. */
function eagerImports(outputs, file, seen = new Set()) {
  if (seen.has(file)) return [];
  seen.add(file);
  return outputs[file].imports.filter((i) => i.kind !== 'dynamic-import').flatMap((i) => (i.external ? [i.path] : eagerImports(outputs, i.path, seen)));
}
const daemonStart = eagerImports(daemon.metafile.outputs, relative(ROOT, DAEMON_OUT).split(sep).join('/'));
if (daemonStart.includes('prom-client')) throw new Error('the daemon bundle would load prom-client at every start: import the HTTP API with import() only');

// A cache of the previous bundle would be rejected anyway; the next run writes a new one.
rmSync(OUT + '.cache', { force: true });
