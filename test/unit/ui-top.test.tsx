import { render } from 'ink-testing-library';
import { act, createElement } from 'react';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryInfo, StatsSnapshot } from '../../src/protocol/wire.js';
import { TopApp, TopView } from '../../src/ui/top.js';
import { waitFor } from '../helpers/sandbox.js';

const win = (n: number) => ({ lastMinute: n, lastHour: n, last24h: n, sinceStart: n });

function snapshot(overrides: Partial<StatsSnapshot> = {}): StatsSnapshot {
  return {
    at: '2026-11-27T10:00:00.000Z',
    daemon: {
      pid: 4242,
      version: '0.1.0',
      protocol: 1,
      home: '/h',
      dataDir: '/h/data',
      store: { kind: 'leveldb', location: '/h/data' },
      socket: '/h/run/discue.sock',
      startedAt: '2026-11-27T09:00:00.000Z',
      uptimeMs: 3_600_000,
      queues: 1,
      messages: 12,
      rssBytes: 64 * 1048576,
      connections: 1,
    },
    queues: [{ name: 'orders', createdAt: '', messages: 12, bytes: 100, stats: { added: win(7), listeners: 2 } }],
    listeners: [
      {
        id: 'l_a',
        name: 'dashboard',
        kind: 'http',
        queues: ['orders'],
        url: 'http://127.0.0.1:9/hook',
        timeoutMs: 1000,
        maxAttempts: 3,
        retryDelayMs: 100,
        concurrency: 1,
        state: 'active',
        createdAt: '',
        stats: { succeeded: win(5), failed: win(0), dead: win(0), pending: 0, lagMs: 0 },
        progress: [],
      },
      {
        id: 'l_b',
        name: 'mailer',
        kind: 'exec',
        queues: ['orders'],
        command: ['./notify.sh'],
        timeoutMs: 1000,
        maxAttempts: 3,
        retryDelayMs: 100,
        concurrency: 1,
        state: 'paused',
        createdAt: '',
        stats: { succeeded: win(1), failed: win(4), dead: win(2), pending: 9, lagMs: 125_000 },
        progress: [
          {
            queue: 'orders',
            inFlight: 0,
            delivered: 1,
            failedAttempts: 4,
            dead: 2,
            pending: 9,
            lagMs: 125_000,
            lastOutcome: 'failed',
            consecutiveFailures: 2,
            lastError: 'exit code 3',
            nextAttemptAt: '2026-11-27T10:00:08.000Z',
          },
        ],
      },
    ],
    recent: [
      {
        at: '2026-11-27T10:00:01.000Z',
        listener: 'mailer',
        queue: 'orders',
        messageId: '01M8DKS79ZDKXBW5BP87VQK416',
        state: 'dead',
        attempt: { attempt: 3, at: '2026-11-27T10:00:01.000Z', durationMs: 12, ok: false, exitCode: 3, error: 'exit code 3' },
      },
    ],
    ...overrides,
  };
}

const tick = () => new Promise((r) => setTimeout(r, 30));

/** Polls the last frame until it matches: renders are asynchronous, and the machine may be busy. */
async function frameMatching(app: { lastFrame(): string | undefined }, re: RegExp): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const frame = app.lastFrame() ?? '';
    if (re.test(frame)) return frame;
    if (Date.now() > deadline) throw new Error(`no frame matched ${re}; last frame:\n${frame}`);
    await tick();
  }
}

/**
 * Writes one key inside React's act(): the render it causes and the effects
 * after it (useInput re-registering its handler with the new selection) are
 * flushed before act returns, so the next key never meets a stale handler.
 * Each key is written once; `effect` must hold after it, polled for what
 * arrives asynchronously (the fake source's promises).
 */
async function press(app: { stdin: { write(data: string): void } }, key: string, effect: () => boolean, what: string): Promise<void> {
  await act(async () => {
    app.stdin.write(key);
  });
  await waitFor(effect, 10_000, what);
}

describe('TopView', () => {
  it('shows queues with rates, listeners with state and counts, and the recent tail', () => {
    const { lastFrame } = render(createElement(TopView, { snapshot: snapshot(), selected: 1, detail: undefined, status: '', error: undefined }));
    const frame = lastFrame() ?? '';
    expect(frame).toContain('pid 4242');
    expect(frame).toMatch(/orders\s+12\s+7\s+7\s+7\s+2/);
    expect(frame).toMatch(/dashboard\s+http\s+active/);
    expect(frame).toMatch(/> mailer\s+exec\s+paused\s+9\s+2m 5s\s+1\s+4\s+2\s+2 failed attempts, exit/);
    expect(frame).toMatch(/dashboard\s+http\s+active\s+0\s+0s\s/);
    expect(frame).toMatch(/mailer\s+orders\s+dead\s+exit 3/);
  });

  it('shows an error only while failures go on: after a success the last delivery time is back', () => {
    const s = snapshot();
    const mailer = s.listeners[1]!;
    mailer.progress = [
      { queue: 'orders', inFlight: 0, delivered: 46, failedAttempts: 4, dead: 0, lastOutcome: 'ok', consecutiveFailures: 0, lastDeliveryAt: '2026-11-27T09:59:58.000Z' },
    ];
    const frame = render(createElement(TopView, { snapshot: s, selected: 0, detail: undefined, status: '', error: undefined })).lastFrame() ?? '';
    expect(frame).toMatch(/mailer\s+exec\s+paused\s+9\s+2m 5s\s+1\s+4\s+2\s+09:59:58/);
    expect(frame).not.toContain('exit code 3\n');
    expect(frame).not.toMatch(/mailer.*failed attempts/);
  });

  it('keeps a multi-line error on its listener row: folded onto one line, never a row of its own', () => {
    const s = snapshot();
    s.listeners[1]!.progress![0]!.lastError = 'Command failed with ENOENT: no-such-command\nspawn no-such-command ENOENT';
    const frame = render(createElement(TopView, { snapshot: s, selected: 0, detail: undefined, status: '', error: undefined })).lastFrame() ?? '';
    const lines = frame.split('\n');
    const row = lines.find((l) => /mailer\s+exec\s+paused/.test(l));
    expect(row, frame).toMatch(/2 failed attempts, Comm/);
    expect(lines.some((l) => /^\s*spawn no-such-command ENOENT/.test(l))).toBe(false);
  });

  it('shows each attempt with its own outcome, newest first', () => {
    const s = snapshot();
    const deliveries: DeliveryInfo[] = [
      {
        id: 'l_b/01M8DKS79ZDKXBW5BP87VQK417',
        listenerId: 'l_b',
        queue: 'orders',
        messageId: '01M8DKS79ZDKXBW5BP87VQK417',
        state: 'dead',
        updatedAt: '2026-11-27T10:00:05.000Z',
        attempts: [1, 2, 3].map((n) => ({ attempt: n, at: `2026-11-27T10:00:0${n + 2}.000Z`, durationMs: 2, ok: false, error: 'Command failed with ENOENT' })),
      },
      {
        id: 'l_b/01M8DKS79ZDKXBW5BP87VQK416',
        listenerId: 'l_b',
        queue: 'orders',
        messageId: '01M8DKS79ZDKXBW5BP87VQK416',
        state: 'delivered',
        updatedAt: '2026-11-27T10:00:02.000Z',
        attempts: [
          { attempt: 1, at: '2026-11-27T10:00:01.000Z', durationMs: 5, ok: false, exitCode: 3, error: 'exit code 3' },
          { attempt: 2, at: '2026-11-27T10:00:02.000Z', durationMs: 5, ok: true, exitCode: 0 },
        ],
      },
    ];
    const detail = { listener: s.listeners[1]!, deliveries };
    const frame = render(createElement(TopView, { snapshot: s, selected: 1, detail, status: '', error: undefined })).lastFrame() ?? '';
    const rows = frame.split('\n').filter((line) => /#\d\s/.test(line));
    expect(rows.map((r) => /(#\d)\s+(\w+)/.exec(r)!.slice(1).join(' '))).toEqual(['#3 dead', '#2 failed', '#1 failed', '#2 delivered', '#1 failed']);
  });

  it('says when it is still connecting or the daemon failed', () => {
    const { lastFrame } = render(createElement(TopView, { snapshot: undefined, selected: 0, detail: undefined, status: '', error: 'DAEMON_DIED' }));
    expect(lastFrame()).toContain('error: DAEMON_DIED');
  });
});

describe('TopApp keys', () => {
  // React flushes renders and effects inside act() only where the environment says it is a
  // test; the TopView renders above are synchronous and stay outside it.
  const actEnvironment = globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean };
  beforeAll(() => {
    actEnvironment.IS_REACT_ACT_ENVIRONMENT = true;
  });
  afterAll(() => {
    delete actEnvironment.IS_REACT_ACT_ENVIRONMENT;
  });

  function fakeSource() {
    const calls: string[] = [];
    let state: 'active' | 'paused' = 'active';
    const deliveries: DeliveryInfo[] = [
      {
        id: 'l_a/01M8DKS79ZDKXBW5BP87VQK416',
        listenerId: 'l_a',
        queue: 'orders',
        messageId: '01M8DKS79ZDKXBW5BP87VQK416',
        state: 'failed',
        updatedAt: '2026-11-27T10:00:02.000Z',
        attempts: [{ attempt: 1, at: '2026-11-27T10:00:02.000Z', durationMs: 31, ok: false, status: 503, output: 'try later' }],
      },
    ];
    return {
      calls,
      source: {
        stats: async () => {
          const s = snapshot();
          s.listeners[0]!.state = state;
          return s;
        },
        deliveries: async (lid: string) => {
          calls.push(`deliveries ${lid}`);
          return deliveries;
        },
        setPaused: async (lid: string, paused: boolean) => {
          calls.push(`${paused ? 'pause' : 'resume'} ${lid}`);
          state = paused ? 'paused' : 'active';
        },
      },
    };
  }

  it('moves the selection, opens attempts on enter, pauses with p, quits with q', async () => {
    const { source, calls } = fakeSource();
    // Rendered inside act: the first snapshot (the fake source answers at once) and the effects
    // that subscribe to stdin with its listeners are in place before the first key, which would
    // otherwise meet a handler that knows no listeners yet and be lost.
    let app!: ReturnType<typeof render>;
    await act(async () => {
      app = render(createElement(TopApp, { source, intervalMs: 60_000 }));
    });
    await frameMatching(app, /> dashboard/);
    await press(app, '\u001B[B', () => /> mailer/.test(app.lastFrame() ?? ''), 'the selection to move down');
    await press(app, '\u001B[A', () => /> dashboard/.test(app.lastFrame() ?? ''), 'the selection to move up');
    await press(app, '\r', () => calls.includes('deliveries l_a'), 'the attempts to be fetched');
    await frameMatching(app, /#1\s+failed\s+HTTP 503\s+31ms\s+try later/);
    await press(app, 'p', () => calls.some((c) => c.endsWith(' l_a')), 'the pause request');
    expect(calls.filter((c) => c === 'pause l_a')).toHaveLength(1);
    await frameMatching(app, /dashboard\s+http\s+paused/);
    expect(app.lastFrame()).toContain('paused dashboard');
    // q ends the app: it stops reading the terminal.
    expect(app.stdin.listenerCount('readable')).toBe(1);
    await act(async () => {
      app.stdin.write('q');
    });
    expect(app.stdin.listenerCount('readable')).toBe(0);
    app.unmount();
  });

  it('keys that arrive in one chunk are each a key: Enter then q opens the attempts and quits; q then p pauses nothing', async () => {
    const { source, calls } = fakeSource();
    let app!: ReturnType<typeof render>;
    await act(async () => {
      app = render(createElement(TopApp, { source, intervalMs: 60_000 }));
    });
    await frameMatching(app, /> dashboard/);
    expect(app.stdin.listenerCount('readable')).toBe(1);
    // What a terminal sends when Enter and q are typed faster than top reads: one chunk.
    await act(async () => {
      app.stdin.write('\rqp');
    });
    await waitFor(() => calls.includes('deliveries l_a'), 10_000, 'the Enter in the chunk');
    expect(app.stdin.listenerCount('readable')).toBe(0);
    expect(calls.some((c) => c.startsWith('pause') || c.startsWith('resume'))).toBe(false);
    app.unmount();
  });
});
