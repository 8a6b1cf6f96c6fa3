/**
 * The CLI on a real terminal: tmux (on its own socket, so that no other
 * test's tmux server matters) runs a command in a pseudo-terminal,
 * send-keys types, capture-pane reads the screen, and the command's exit
 * code is written to a file by the shell around it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageCount, ok } from '../helpers/discue.js';
import { BIN, useSandbox, waitFor } from '../helpers/sandbox.js';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('on a terminal', () => {
  const sb = useSandbox('discue-tty-');
  let socket: string;
  let runs = 0;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const screen = (session: string) => tmux('capture-pane', '-p', '-t', session);

  /** Starts `discue ...args` in a new terminal of the given size; returns its session and where its exit code lands. */
  function start(args: string[], size = { columns: 120, rows: 40 }): { session: string; exitCode: () => number | undefined } {
    const session = `t${++runs}`;
    const rc = join(sb.dir, `${session}.rc`);
    const env = Object.entries(sb.env).map(([k, v]) => `${k}=${quote(v)}`).join(' ');
    const command = `env ${env} TERM=xterm-256color ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}; echo $? > ${quote(rc)}; sleep 600`;
    tmux('new-session', '-d', '-s', session, '-x', String(size.columns), '-y', String(size.rows), command);
    return {
      session,
      exitCode: () => (existsSync(rc) && readFileSync(rc, 'utf8').endsWith('\n') ? Number(readFileSync(rc, 'utf8')) : undefined),
    };
  }

  beforeEach(() => {
    socket = join(sb.dir, 'tmux.sock');
  });
  afterEach(async () => {
    try {
      tmux('kill-server');
    } catch {
      // no server started
    }
  });

  describe('confirmation before deleting messages', () => {
    beforeEach(async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      await ok(sb, ['publish', 'orders'], '{"data":"a"}\n{"data":"b"}\n');
    });

    it('purge: n keeps the messages (exit 1, ABORTED), y deletes them', async () => {
      const no = start(['queue', 'purge', 'orders']);
      await waitFor(() => screen(no.session).includes('Delete 2 messages of orders? [y/N]'), 30_000, 'the question');
      tmux('send-keys', '-t', no.session, 'n', 'Enter');
      await waitFor(() => no.exitCode() !== undefined, 30_000, 'purge to exit');
      expect(no.exitCode()).toBe(1);
      expect(screen(no.session)).toContain('[ABORTED]');
      expect(await messageCount(sb, 'orders')).toBe(2);

      const yes = start(['queue', 'purge', 'orders']);
      await waitFor(() => screen(yes.session).includes('[y/N]'), 30_000, 'the question');
      tmux('send-keys', '-t', yes.session, 'y', 'Enter');
      await waitFor(() => yes.exitCode() !== undefined, 30_000, 'purge to exit');
      expect(yes.exitCode(), screen(yes.session)).toBe(0);
      expect(screen(yes.session)).toContain('purged 2 messages from orders');
      expect(await messageCount(sb, 'orders')).toBe(0);
    });

    it('delete --force asks; Ctrl-C exits 130 and keeps the queue; --yes does not ask', async () => {
      const interrupted = start(['queue', 'delete', 'orders', '--force']);
      await waitFor(() => screen(interrupted.session).includes('Delete 2 messages of orders and the queue? [y/N]'), 30_000, 'the question');
      tmux('send-keys', '-t', interrupted.session, 'C-c');
      await waitFor(() => interrupted.exitCode() !== undefined, 30_000, 'delete to exit');
      expect(interrupted.exitCode()).toBe(130);
      expect(await messageCount(sb, 'orders')).toBe(2);

      const yes = start(['queue', 'delete', 'orders', '--force', '--yes']);
      await waitFor(() => yes.exitCode() !== undefined, 30_000, 'delete --yes to exit');
      expect(yes.exitCode(), screen(yes.session)).toBe(0);
      expect(screen(yes.session)).not.toContain('[y/N]');
      expect(JSON.parse(await ok(sb, ['queue', 'list', '--json']))).toEqual([]);
    });
  });

  describe('Ctrl-C exits 130, everywhere', () => {
    it('top: Ctrl-C exits 130, q exits 0', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const interrupted = start(['top', '--interval', '200']);
      await waitFor(() => screen(interrupted.session).includes('q quit'), 30_000, 'top to draw');
      tmux('send-keys', '-t', interrupted.session, 'C-c');
      await waitFor(() => interrupted.exitCode() !== undefined, 30_000, 'top to exit on Ctrl-C');
      expect(interrupted.exitCode()).toBe(130);

      const quit = start(['top', '--interval', '200']);
      await waitFor(() => screen(quit.session).includes('q quit'), 30_000, 'top to draw');
      tmux('send-keys', '-t', quit.session, 'q');
      await waitFor(() => quit.exitCode() !== undefined, 30_000, 'top to exit on q');
      expect(quit.exitCode()).toBe(0);
    });

    it('listen: Ctrl-C exits 130', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const listen = start(['listen', 'orders']);
      // Connected once a message published now is printed.
      await waitFor(async () => {
        await ok(sb, ['publish', 'orders', '--data', 'ping']);
        return screen(listen.session).includes('ping');
      }, 30_000, 'listen to print');
      tmux('send-keys', '-t', listen.session, 'C-c');
      await waitFor(() => listen.exitCode() !== undefined, 30_000, 'listen to exit on Ctrl-C');
      expect(listen.exitCode()).toBe(130);
    });
  });

  describe('tables fit the terminal', () => {
    it('a list cuts long and multi-line values with … instead of wrapping', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      const script = `echo first line\necho ${'x'.repeat(150)}\nexit 3`;
      const added = JSON.parse(await ok(sb, ['listener', 'add', '--queue', 'orders', '--shell', '--exec', script, '--name', 'failing', '--json'])) as { id: string };
      const list = start(['listener', 'list'], { columns: 100, rows: 20 });
      await waitFor(() => list.exitCode() !== undefined, 30_000, 'listener list to exit');
      expect(list.exitCode()).toBe(0);
      const lines = screen(list.session).split('\n').filter((l) => l.trim() !== '');
      expect(lines, lines.join('\n')).toHaveLength(2);
      expect(lines[0]).toMatch(/^ID\s+NAME\s+KIND\s+TARGET/);
      // The id and the name stay whole; the command is cut.
      expect(lines[1]).toContain(added.id);
      expect(lines[1]).toContain('failing');
      expect(lines[1]).toMatch(/sh -c echo[^\n]*… /);
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
    });

    it('top keeps a long error on its row, cut with …', async () => {
      await ok(sb, ['queue', 'create', 'orders']);
      // A program that exists when the listener is added (add checks it) and is gone when the message comes.
      const program = join(sb.dir, `gone-${'x'.repeat(60)}.sh`);
      writeFileSync(program, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
      await ok(sb, ['listener', 'add', '--queue', 'orders', '--exec', `${program} --with an argument`, '--name', 'failing', '--max-attempts', '1']);
      rmSync(program);
      await ok(sb, ['publish', 'orders', '--data', 'x']);
      await waitFor(async () => {
        const deliveries = JSON.parse(await ok(sb, ['deliveries', 'list', '--state', 'dead', '--json'])) as unknown[];
        return deliveries.length === 1;
      }, 30_000, 'the delivery to die');
      const top = start(['top', '--interval', '200'], { columns: 90, rows: 30 });
      await waitFor(() => /failing\s+exec\s+active/.test(screen(top.session)), 30_000, 'top to draw the listener');
      const shown = screen(top.session);
      const row = shown.split('\n').find((l) => /failing\s+exec\s+active/.test(l))!;
      expect(row, shown).toMatch(/1 failed att.*…$/);
      expect(row.length).toBeLessThanOrEqual(90);
      // The header is one line too.
      expect(shown).toMatch(/LISTENER\s+KIND\s+STATE/);
      tmux('send-keys', '-t', top.session, 'q');
      await waitFor(() => top.exitCode() !== undefined, 30_000, 'top to exit');
    });
  });
});
