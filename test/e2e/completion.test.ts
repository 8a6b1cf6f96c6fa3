/**
 * Shell completion through the real binary: the bash script `discue
 * completion bash` prints is sourced in a real bash, its completion function
 * called as bash would call it on Tab (COMP_WORDS, COMP_CWORD), and COMPREPLY
 * read back. Queue and listener names come from a daemon in the sandbox; with
 * none running, nothing is offered and none is started.
 *
 * zsh and fish are checked with `zsh -n` / `fish -n` where installed; the
 * structure of their scripts is checked always.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { daemonProcesses, expectError, ok } from '../helpers/discue.js';
import { BIN, collect, ROOT, useSandbox } from '../helpers/sandbox.js';
import type { Sandbox } from '../helpers/sandbox.js';

/** Sources the script, fills COMP_WORDS with the words (the last one is under the cursor), prints COMPREPLY. */
const CALL = `
source "$1"; shift
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=\${#COMP_LINE}
_discue
printf '%s\\n' "\${COMPREPLY[@]}"
`;

function installed(shell: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;
}

class BashCompletion {
  readonly file: string;
  private readonly bin: string;

  constructor(private readonly sb: Sandbox) {
    this.file = join(sb.dir, 'discue.bash');
    // The scripts run `discue` from PATH, as they would for an installed package.
    this.bin = join(sb.dir, 'bin');
    mkdirSync(this.bin);
    const shim = join(this.bin, 'discue');
    writeFileSync(shim, `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`);
    chmodSync(shim, 0o755);
  }

  async load(): Promise<string> {
    const script = await ok(this.sb, ['completion', 'bash']);
    writeFileSync(this.file, script);
    return script;
  }

  /**
   * What Tab offers after `words` (the last word is the one being completed).
   * The run's timeout is a hang guard: completion that never returns fails
   * here instead of stalling the suite.
   */
  async complete(words: string[], env: Record<string, string | undefined> = {}, timeoutMs = 30_000): Promise<string[]> {
    const child = spawn('bash', ['--norc', '--noprofile', '-c', CALL, 'bash', this.file, 'discue', ...words], {
      cwd: this.sb.dir,
      env: { ...this.sb.env, PATH: `${this.bin}:${this.sb.env.PATH}`, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const result = await collect(child, { timeoutMs });
    expect(result.code, `bash: ${result.stderr}`).toBe(0);
    expect(result.stderr).toBe('');
    return result.stdout.split('\n').filter((l) => l !== '');
  }
}

describe('discue completion bash, in a real bash', () => {
  const sb = useSandbox();
  let bash: BashCompletion;
  let wedged: { server: Server; sockets: Socket[] } | undefined;

  beforeEach(async () => {
    bash = new BashCompletion(sb);
    await bash.load();
  });
  afterEach(async () => {
    if (wedged) {
      for (const s of wedged.sockets) s.destroy();
      await new Promise((r) => wedged!.server.close(r));
      wedged = undefined;
    }
  });

  it('prints the committed completions/discue.bash', async () => {
    expect(readFileSync(bash.file, 'utf8')).toBe(readFileSync(join(ROOT, 'completions', 'discue.bash'), 'utf8'));
  });

  it('completes the top-level commands by their canonical names only, without the hidden one', async () => {
    const top = await bash.complete(['']);
    for (const name of ['daemon', 'queue', 'publish', 'messages', 'listener', 'listen', 'deliveries', 'top', 'config', 'completion', 'help']) {
      expect(top).toContain(name);
    }
    // Aliases still work when typed, but are not offered: `pu<TAB>` has one answer.
    for (const alias of ['pub', 'msg', 'sub']) expect(top).not.toContain(alias);
    expect(await bash.complete(['pu'])).toEqual(['publish']);
    expect(await bash.complete(['m'])).toEqual(['messages']);
    expect(top).not.toContain('__complete');
    expect(await bash.complete(['li'])).toEqual(['listener', 'listen']);
    expect(await bash.complete(['--json', 'q'])).toEqual(['queue']);
  });

  it('completes subcommands of a group, and follows aliases', async () => {
    expect(await bash.complete(['queue', ''])).toEqual(['create', 'list', 'show', 'update', 'delete', 'purge', 'rename']);
    expect(await bash.complete(['msg', ''])).toEqual(['list', 'get', 'delete']);
    expect(await bash.complete(['config', 'get', 'listener.'])).toEqual(['listener.timeout', 'listener.maxAttempts']);
    expect(await bash.complete(['completion', ''])).toEqual(['bash', 'zsh', 'fish']);
  });

  it('completes the options of `listener add`, with the global ones, and option values', async () => {
    const options = await bash.complete(['listener', 'add', '--']);
    for (const flag of ['--url', '--exec', '--queue', '--name', '--header', '--secret', '--shell', '--timeout', '--max-attempts', '--retry-delay', '--concurrency', '--from', '--help']) {
      expect(options).toContain(flag);
    }
    for (const flag of ['--json', '--socket', '--no-color', '--quiet', '--version']) expect(options).toContain(flag);
    expect(options.every((o) => o.startsWith('--'))).toBe(true);
    // An option's value is not taken for the next positional or subcommand.
    expect(await bash.complete(['listener', 'add', '--from', ''])).toEqual(['new', 'all']);
    expect(await bash.complete(['listener', 'add', '--from', '=', ''])).toEqual(['new', 'all']);
    expect(await bash.complete(['listener', 'add', '--name', 'x', '--m'])).toEqual(['--max-attempts']);
    expect(await bash.complete(['daemon', 'logs', '-'])).toEqual(expect.arrayContaining(['-n', '--lines', '-f', '--follow', '-h']));
  });

  it('completes queue and listener names from the running daemon', async () => {
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['queue', 'create', 'payments']);
    await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', 'true', '--name', 'mailer']);
    const unnamed = JSON.parse(await ok(sb, ['listener', 'add', '--queue', 'payments', '--exec', 'true', '--json'])) as { id: string };

    expect(await bash.complete(['publish', ''])).toEqual(['orders', 'payments']);
    expect(await bash.complete(['pub', 'o'])).toEqual(['orders']);
    // The second argument of publish is the message, not a queue.
    expect(await bash.complete(['publish', 'orders', ''])).toEqual([]);
    for (const verb of ['show', 'update', 'delete', 'purge', 'rename']) expect(await bash.complete(['queue', verb, 'pay'])).toEqual(['payments']);
    expect(await bash.complete(['queue', 'create', ''])).toEqual([]);
    // A rename's new name is new.
    expect(await bash.complete(['queue', 'rename', 'orders', ''])).toEqual([]);
    for (const verb of ['list', 'get', 'delete']) expect(await bash.complete(['messages', verb, ''])).toEqual(['orders', 'payments']);
    expect(await bash.complete(['listen', 'orders', ''])).toEqual(['orders', 'payments']);
    expect(await bash.complete(['listener', 'add', '--exec', 'true', '--queue', ''])).toEqual(['orders', 'payments']);

    for (const verb of ['show', 'remove', 'pause', 'resume']) {
      expect(await bash.complete(['listener', verb, ''])).toEqual(['mailer', unnamed.id]);
    }
    expect(await bash.complete(['listener', 'show', 'ma'])).toEqual(['mailer']);
    expect(await bash.complete(['deliveries', 'list', '--listener', 'm'])).toEqual(['mailer']);
  });

  it('asks the daemon on the --socket given on the command line', async () => {
    const other = join(sb.dir, 'other.sock');
    await ok(sb, ['--socket', other, 'queue', 'create', 'elsewhere']);
    // The default socket has no daemon: nothing, and none is started there.
    expect(await bash.complete(['publish', ''])).toEqual([]);
    expect(await bash.complete(['--socket', other, 'publish', ''])).toEqual(['elsewhere']);
    expect(await bash.complete(['--socket', '=', other, 'publish', ''])).toEqual(['elsewhere']);
    expect(await bash.complete(['publish', ''], { DISCUE_SOCKET: other })).toEqual(['elsewhere']);
    expect(daemonProcesses(sb.home)).toHaveLength(1);
  });

  it('offers nothing and starts no daemon when none is running', async () => {
    expect(await bash.complete(['publish', ''])).toEqual([]);
    expect(await bash.complete(['listener', 'show', ''])).toEqual([]);
    expect(await bash.complete(['listener', 'add', '--queue', ''])).toEqual([]);
    expect(await bash.complete(['listen', ''])).toEqual([]);
    expect(existsSync(join(sb.home, 'run', 'daemon.pid'))).toBe(false);
    expect(daemonProcesses(sb.home)).toEqual([]);
    const status = await sb.run(['daemon', 'status']);
    expect(status.code).toBe(3);

    // A daemon that was running and stopped leaves nothing to answer either.
    await ok(sb, ['queue', 'create', 'orders']);
    await ok(sb, ['daemon', 'stop']);
    expect(await bash.complete(['publish', ''])).toEqual([]);
    expect((await sb.run(['daemon', 'status'])).code).toBe(3);
  });

  it('gives up on a socket that accepts but never answers, offering nothing', async () => {
    const path = join(sb.dir, 'wedged.sock');
    const sockets: Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(path, r));
    wedged = { server, sockets };
    // The daemon handshake alone would wait 10 s; __complete ends itself
    // after about 1.5 s. The 8 s limit is the hang guard that proves the bound.
    expect(await bash.complete(['--socket', path, 'publish', ''], {}, 8_000)).toEqual([]);
    expect(sockets.length).toBeGreaterThan(0);
  });
});

describe('discue completion, other shells and errors', () => {
  const sb = useSandbox();

  const TOP = ['daemon', 'queue', 'publish', 'messages', 'listener', 'listen', 'deliveries', 'top', 'config', 'completion'];

  it('an unknown shell is a usage error (exit 2)', async () => {
    const result = await sb.run(['completion', 'tcsh']);
    expectError(result, 2, 'USAGE');
    expect(result.stderr).toContain('bash, zsh, fish');
  });

  it('__complete is hidden from --help, completion is listed', async () => {
    const help = await ok(sb, ['--help']);
    expect(help).toContain('completion');
    expect(help).not.toContain('__complete');
    // And prints nothing, successfully, without a daemon.
    const result = await sb.run(['__complete', 'queues']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(daemonProcesses(sb.home)).toEqual([]);
  });

  it('zsh: the committed _discue, a #compdef function per command, names from the daemon', async () => {
    const script = await ok(sb, ['completion', 'zsh']);
    expect(script).toBe(readFileSync(join(ROOT, 'completions', '_discue'), 'utf8'));
    expect(script.startsWith('#compdef discue\n')).toBe(true);
    for (const name of TOP) {
      expect(script).toContain(`'${name}:`); // in the described list of commands
      expect(script).toMatch(new RegExp(`\\(${name}(\\|[a-z]+)*\\) _discue__${name} `)); // dispatched
      expect(script).toContain(`\n_discue__${name}() {\n`);
    }
    expect(script).toContain('(publish|pub) _discue__publish && ret=0');
    expect(script).not.toContain(`'pub:`); // aliases are dispatched, not offered
    const body = (fn: string) => script.slice(script.indexOf(`\n${fn}() {\n`), script.indexOf('\n}\n', script.indexOf(`\n${fn}() {\n`)));
    expect(body('_discue__publish')).toContain(`'1:queue:_discue_queues'`);
    expect(body('_discue__listener__show')).toContain(`'1:ref:_discue_listeners'`);
    expect(body('_discue__listen')).toContain(`'*:queues:_discue_queues'`);
    expect(body('_discue__listener__add')).toMatch(/'\*--queue=\[[^\]]*\]:queue:_discue_queues'/);
    expect(body('_discue__queue__create')).toContain(`'1:name: '`);
    expect(script).toContain('command discue $args 2>/dev/null');
    expect(script).toContain('args=(__complete $1)');
    // Every function is closed.
    expect(script.match(/^[_a-z]+\(\) \{$/gm)!.length).toBe(script.match(/^\}$/gm)!.length);
    if (installed('zsh')) {
      const file = join(sb.dir, '_discue');
      writeFileSync(file, script);
      const check = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
    }
  });

  it('fish: the committed discue.fish, conditions per command, names from the daemon', async () => {
    const script = await ok(sb, ['completion', 'fish']);
    expect(script).toBe(readFileSync(join(ROOT, 'completions', 'discue.fish'), 'utf8'));
    for (const name of TOP) {
      expect(script).toContain(`complete -c discue -n '__discue_arg \\'\\' 0' -a '${name}'`);
      expect(script).toContain(`case '|${name}'`);
    }
    expect(script).not.toContain(`-a 'pub'`); // aliases are followed, not offered
    expect(script).toContain(`complete -c discue -n '__discue_arg \\'publish\\' 0' -f -a '(__discue_names queues)'`);
    expect(script).toContain(`complete -c discue -n '__discue_arg \\'listen\\' 0 more' -f -a '(__discue_names queues)'`);
    expect(script).toContain(`complete -c discue -n '__discue_arg \\'listener show\\' 0' -f -a '(__discue_names listeners)'`);
    expect(script).toContain(`complete -c discue -n '__discue_in \\'listener add\\'' -l queue -r -f -a '(__discue_names queues)'`);
    expect(script).toContain('command discue $args 2>/dev/null');
    // Every line that is not a comment, blank or inside a function is a `complete -c discue` line.
    let depth = 0;
    for (const line of script.split('\n')) {
      if (/^function /.test(line)) depth++;
      else if (line === 'end') depth--;
      else if (depth === 0 && line !== '' && !line.startsWith('#')) expect(line).toMatch(/^complete -c discue /);
    }
    expect(depth).toBe(0);
    if (installed('fish')) {
      const file = join(sb.dir, 'discue.fish');
      writeFileSync(file, script);
      const check = spawnSync('fish', ['-n', file], { encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
    }
  });
});
