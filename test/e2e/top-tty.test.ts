import { execFileSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, useSandbox, waitFor } from '../helpers/sandbox.js';
import { listDeliveries } from '../helpers/delivery.js';

/** `discue top` in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen. */
describe('discue top in a real terminal', () => {
  const sb = useSandbox();
  let session: string;
  const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const screen = () => tmux('capture-pane', '-p', '-t', session);
  const alive = () => {
    try {
      tmux('has-session', '-t', session);
      return true;
    } catch {
      return false;
    }
  };

  beforeEach(() => {
    session = `discue-top-${process.pid}-${Date.now()}`;
  });
  afterEach(async () => {
    if (alive()) tmux('kill-session', '-t', session);
  });

  it('draws queues and listeners live, pauses a listener with p, quits with q', async () => {
    expect((await sb.run(['queue', 'create', 'orders'])).code).toBe(0);
    expect((await sb.run(['listener', 'add', '--queue', 'orders', '--exec', 'cat', '--name', 'printer'])).code).toBe(0);
    expect((await sb.run(['publish', 'orders', '--data', 'hello'])).code).toBe(0);

    const env = Object.entries(sb.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '45', `env ${env} TERM=xterm-256color ${process.execPath} ${BIN} top --interval 200`);

    await waitFor(() => /printer\s+exec\s+active/.test(screen()), 30_000, 'top to draw the listener');
    const first = screen();
    expect(first).toMatch(/orders\s+1\s/);
    expect(first).toContain('q quit');

    // A message published while top runs shows up in the live tail.
    expect((await sb.run(['publish', 'orders', '--data', 'second'])).code).toBe(0);
    await waitFor(() => /orders\s+2\s/.test(screen()), 30_000, 'the queue count to refresh');

    tmux('send-keys', '-t', session, 'p');
    await waitFor(() => /printer\s+exec\s+paused/.test(screen()), 30_000, 'the listener to show paused');
    const shown = JSON.parse((await sb.run(['listener', 'show', 'printer', '--json'])).stdout) as { state: string };
    expect(shown.state).toBe('paused');

    tmux('send-keys', '-t', session, 'q');
    await waitFor(() => !alive(), 30_000, 'top to exit on q');
  });

  it('shows the attempts of a failing command listener as failed and dead, newest first', async () => {
    expect((await sb.run(['queue', 'create', 'orders'])).code).toBe(0);
    const add = await sb.run(['listener', 'add', '--queue', 'orders', '--exec', 'false', '--name', 'broken', '--max-attempts', '3', '--retry-delay', '100ms']);
    expect(add.code, add.stderr).toBe(0);
    expect((await sb.run(['publish', 'orders', '--data', 'hello'])).code).toBe(0);
    const [dead] = await waitFor(async () => {
      const list = await listDeliveries(sb, ['--state', 'dead']);
      return list.length === 1 ? list : undefined;
    }, 30_000, 'the delivery to die after 3 attempts');
    expect(dead!.attempts.map((a) => a.ok)).toEqual([false, false, false]);

    const env = Object.entries(sb.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '45', `env ${env} TERM=xterm-256color ${process.execPath} ${BIN} top --interval 200`);
    await waitFor(() => /> broken\s+exec\s+active/.test(screen()), 30_000, 'top to draw the listener');
    // Enter until the attempts show: a key sent before Ink listens is lost.
    await waitFor(() => {
      if (/#3\s/.test(screen())) return true;
      tmux('send-keys', '-t', session, 'Enter');
      return false;
    }, 30_000, 'the attempts of the dead delivery');
    const rows = screen()
      .split('\n')
      .filter((line) => /#\d\s/.test(line))
      .map((line) => /(#\d)\s+(\w+)/.exec(line)!.slice(1).join(' '));
    expect(rows).toEqual(['#3 dead', '#2 failed', '#1 failed']);
    tmux('send-keys', '-t', session, 'q');
    await waitFor(() => !alive(), 30_000, 'top to exit on q');
  });
});
