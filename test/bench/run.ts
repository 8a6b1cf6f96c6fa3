/**
 * `npm run bench`: runs every section in order, prints its tables as they
 * are measured and a target table at the end, and writes everything to
 * .bench/results.json. BENCH_QUICK=1 shrinks sizes and durations for a
 * smoke run. Daemons and temp directories are cleaned up on success,
 * failure and Ctrl-C.
 *
 * To add a section, write a `Section` (see lib.ts) and append it to
 * ALL_SECTIONS. BENCH_ONLY=name[,name] runs only the named sections.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseSection } from './choose.js';
import { coreSection } from './core.js';
import { deliverySection } from './delivery.js';
import { mixSection } from './mix.js';
import { httpSection } from './http.js';
import { natsSection } from './nats.js';
import { ROOT } from './daemon.js';
import type { Section, SectionContext, Table, Target } from './lib.js';
import { Cleanup, QUICK, failedTarget, log, payloadPool, renderTable, targetTable } from './lib.js';

const ALL_SECTIONS: Section[] = [coreSection, deliverySection, mixSection, httpSection, chooseSection, natsSection];
/** BENCH_ONLY=delivery (comma-separated names) runs only those sections. */
const ONLY = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
const SECTIONS: Section[] = ONLY ? ALL_SECTIONS.filter((s) => ONLY.includes(s.name)) : ALL_SECTIONS;
if (ONLY && SECTIONS.length !== ONLY.length) {
  throw new Error(`BENCH_ONLY=${process.env.BENCH_ONLY}: known sections are ${ALL_SECTIONS.map((s) => s.name).join(', ')}`);
}
const MESSAGE_BYTES = 200;

function filesystemOf(dir: string): string {
  try {
    return execFileSync('df', ['--output=source,fstype', dir], { encoding: 'utf8' }).trim().split('\n').pop() ?? '';
  } catch {
    return 'unknown';
  }
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const cleanup = new Cleanup();
  const interrupted = (signal: NodeJS.Signals) => {
    log(`${signal}: cleaning up`);
    void cleanup.run().then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  // Whatever kills the process, no daemon or temp directory outlives it.
  process.on('exit', () => cleanup.runSync());
  process.on('uncaughtException', (err) => {
    log(`uncaught: ${err.stack ?? err.message}`);
    cleanup.runSync();
    process.exit(1);
  });
  // Output piped into `head` must not abort the run: results.json still gets written.
  process.stdout.on('error', () => undefined);

  const started = Date.now();
  const tables: Record<string, Table[]> = {};
  const targets: Target[] = [];
  const sections: Record<string, unknown> = {};
  let failure: unknown;
  const root = cleanup.tempDir();
  const meta = {
    date: new Date().toISOString(),
    quick: QUICK,
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    commit: gitCommit(),
    tmpdir: tmpdir(),
    filesystem: filesystemOf(root),
    repoFilesystem: filesystemOf(ROOT),
    messageBytes: MESSAGE_BYTES,
    loadAtStart: loadavg(),
  };
  if (meta.loadAtStart[0]! > 0.7) {
    console.log(`warning: the machine is busy before the run (load average ${meta.loadAtStart.map((l) => l.toFixed(2)).join(' ')}); expect noise.`);
  }
  console.log(
    `discue benchmarks${QUICK ? ' (BENCH_QUICK: smaller sizes, not comparable)' : ''}: node ${meta.node}, ${meta.cpus} cpus, data in ${root} (${meta.filesystem})\n`,
  );
  try {
    const payloads = payloadPool(MESSAGE_BYTES);
    for (const section of SECTIONS) {
      const own: Table[] = (tables[section.name] = []);
      const ctx: SectionContext = {
        root,
        cleanup,
        payloads,
        report: (table) => {
          own.push(table);
          console.log(renderTable(table) + '\n');
        },
      };
      // A section that fails is reported as failed; the next one still runs.
      try {
        const result = await section.run(ctx);
        targets.push(...result.targets);
        sections[section.name] = result.data;
      } catch (err) {
        const reason = (err as Error).message ?? String(err);
        log(`section ${section.name} failed: ${(err as Error).stack ?? reason}`);
        targets.push(failedTarget(`section ${section.name}`, reason));
        sections[section.name] = { failed: reason };
        failure ??= err;
      }
    }
  } catch (err) {
    failure = err;
    log(`benchmark failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    log('cleaning up (daemons, temp directories)');
    await cleanup.run();
  }
  if (targets.length > 0) console.log(renderTable(targetTable(targets)) + '\n');
  const outDir = join(ROOT, '.bench');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, 'results.json');
  const results = {
    meta: { ...meta, loadAtEnd: loadavg(), seconds: (Date.now() - started) / 1000, failed: failure === undefined ? false : String(failure) },
    targets,
    sections,
    tables,
  };
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  console.log(`results: ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return failure === undefined ? 0 : 1;
}

process.exitCode = await main();
