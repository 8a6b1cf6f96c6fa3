/**
 * `discue top`: a live dashboard of queues, listeners and recent deliveries.
 * The view is a pure function of its props (tested with ink-testing-library);
 * TopApp adds the keys and the refresh from the daemon's stats request.
 */
import { Box, Text, useApp, useInput } from 'ink';
import type { Key } from 'ink';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Attempt, DeliveryInfo, ListenerInfo, StatsSnapshot } from '../protocol/wire.js';
import { combinedHealth, healthText, lagText } from '../cli/health.js';

/** The key flags top reads (Ink's Key has more). */
type Keys = Pick<Key, 'ctrl' | 'upArrow' | 'downArrow' | 'escape' | 'return'>;
const NO_KEYS: Keys = { ctrl: false, upArrow: false, downArrow: false, escape: false, return: false };
/** Printable characters and Enter: a chunk of these is several plain keys. */
const PLAIN_KEYS = /^[\x20-\x7e\r]+$/;

export interface TopSource {
  stats(): Promise<StatsSnapshot>;
  deliveries(listenerId: string): Promise<DeliveryInfo[]>;
  setPaused(listenerId: string, paused: boolean): Promise<void>;
}

export interface TopViewProps {
  snapshot: StatsSnapshot | undefined;
  selected: number;
  detail: { listener: ListenerInfo; deliveries: DeliveryInfo[] } | undefined;
  status: string;
  error: string | undefined;
}

/** One line (a multi-line error must not break the rows), cut with "…" to leave a space before the next column. */
const cell = (text: string) => text.replace(/\s+/g, ' ');
const pad = (text: string, width: number) => {
  const line = cell(text);
  return line.length >= width ? line.slice(0, width - 2) + '… ' : line.padEnd(width);
};
const time = (iso: string) => iso.slice(11, 19);

/**
 * What became of one attempt: a failed attempt is "failed", or "dead" when
 * it was the last of a dead delivery; only a successful one is "delivered".
 */
export function attemptState(d: DeliveryInfo, a: Attempt): string {
  if (a.ok) return 'delivered';
  const last = d.attempts[d.attempts.length - 1];
  return d.state === 'dead' && last?.attempt === a.attempt ? 'dead' : 'failed';
}

function target(l: ListenerInfo): string {
  if (l.kind === 'http') return l.url ?? '';
  if (l.kind === 'exec') return (l.command ?? []).join(' ');
  return l.connected ? 'listen (connected)' : 'listen (gone)';
}

export function TopView({ snapshot, selected, detail, status, error }: TopViewProps) {
  if (!snapshot) {
    return <Text>{error ? `error: ${error}` : 'connecting to the daemon…'}</Text>;
  }
  const { daemon, queues, listeners, recent } = snapshot;
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>discue top</Text> · pid {daemon.pid} · up {Math.floor(daemon.uptimeMs / 1000)}s · {daemon.queues} queues ·{' '}
        {daemon.messages} messages · {Math.round(daemon.rssBytes / 1048576)} MiB
      </Text>
      <Box marginTop={1} flexDirection="column">
        <Text bold wrap="truncate-end">{pad('QUEUE', 20) + pad('MESSAGES', 10) + pad('RATE/MIN', 10) + pad('1H', 8) + pad('24H', 8) + 'LISTENERS'}</Text>
        {queues.length === 0 && <Text dimColor>no queues</Text>}
        {queues.map((q) => (
          <Text key={q.name} wrap="truncate-end">
            {pad(q.name, 20) +
              pad(String(q.messages), 10) +
              pad(String(q.stats?.added.lastMinute ?? 0), 10) +
              pad(String(q.stats?.added.lastHour ?? 0), 8) +
              pad(String(q.stats?.added.last24h ?? 0), 8) +
              String(q.stats?.listeners ?? 0)}
          </Text>
        ))}
      </Box>
      <Box marginTop={1} flexDirection="column">
        <Text bold wrap="truncate-end">
          {'  ' + pad('LISTENER', 16) + pad('KIND', 7) + pad('STATE', 10) + pad('PENDING', 9) + pad('LAG', 9) + pad('OK 1H', 8) + pad('FAIL 1H', 9) + pad('DEAD', 6) + 'LAST / FAILING'}
        </Text>
        {listeners.length === 0 && <Text dimColor>  no listeners</Text>}
        {listeners.map((l, i) => {
          const last = l.progress?.map((p) => p.lastDeliveryAt ?? '').sort().pop();
          // Only a failure streak shows here: an error followed by successes is history, not health.
          const health = combinedHealth(l.progress ?? []);
          // Throttled by its own rate limit, or waiting for its receiver's liveness URL: held back, not failing.
          const throttled = l.state === 'active' && l.progress?.some((p) => p.throttled === true);
          const down = l.state === 'active' && l.progress?.some((p) => p.liveness === 'down');
          const state = down ? 'down' : throttled ? 'throttled' : l.state;
          const stateColor = state === 'active' ? 'green' : state === 'disabled' ? 'red' : 'yellow';
          return (
            // One line per listener however long its error: cut at the edge rather than wrap into the next row.
            <Text key={l.id} inverse={i === selected} wrap="truncate-end">
              {(i === selected ? '> ' : '  ') + pad(l.name ?? l.id, 16) + pad(l.kind, 7)}
              <Text color={stateColor}>{pad(state, 10)}</Text>
              {pad(String(l.stats?.pending ?? 0), 9) +
                pad(lagText(l.stats?.lagMs ?? 0), 9) +
                pad(String(l.stats?.succeeded.lastHour ?? 0), 8) +
                pad(String(l.stats?.failed.lastHour ?? 0), 9) +
                pad(String(l.stats?.dead.sinceStart ?? 0), 6)}
              {health.consecutiveFailures > 0 && !down ? <Text color="red">{cell(healthText(health, Date.parse(snapshot.at)))}</Text> : last ? time(last) : '-'}
              {l.filters?.length ? <Text dimColor>{'  ' + l.filters.join(' ')}</Text> : null}
            </Text>
          );
        })}
      </Box>
      {detail ? (
        <Box marginTop={1} flexDirection="column">
          <Text bold>
            {detail.listener.name ?? detail.listener.id} → {target(detail.listener)} · recent attempts (esc to go back)
          </Text>
          {detail.deliveries.length === 0 && <Text dimColor>no recorded deliveries</Text>}
          {detail.deliveries.flatMap((d) =>
            // Newest first, like the deliveries themselves and every other list.
            [...d.attempts].reverse().map((a) => (
              <Text key={`${d.id}#${a.attempt}`} color={a.ok ? undefined : 'red'} wrap="truncate-end">
                {time(a.at) +
                  '  ' +
                  pad(d.messageId.slice(-8), 10) +
                  pad(`#${a.attempt}`, 5) +
                  pad(attemptState(d, a), 10) +
                  pad(a.status !== undefined ? `HTTP ${a.status}` : a.exitCode !== undefined ? `exit ${a.exitCode}` : '-', 10) +
                  pad(`${a.durationMs}ms`, 9) +
                  (a.error ?? a.output ?? '').replace(/\s+/g, ' ').slice(0, 60)}
              </Text>
            )),
          )}
        </Box>
      ) : (
        <Box marginTop={1} flexDirection="column">
          <Text bold>RECENT DELIVERIES</Text>
          {recent.length === 0 && <Text dimColor>none yet</Text>}
          {recent.slice(0, 10).map((r, i) => (
            <Text key={`${r.at}-${i}`} color={r.state === 'delivered' ? undefined : 'red'} wrap="truncate-end">
              {time(r.at) +
                '  ' +
                pad(r.listener, 16) +
                pad(r.queue, 14) +
                pad(r.state, 10) +
                pad(r.attempt.status !== undefined ? `HTTP ${r.attempt.status}` : r.attempt.exitCode !== undefined ? `exit ${r.attempt.exitCode}` : '-', 10) +
                `${r.attempt.durationMs}ms`}
            </Text>
          ))}
        </Box>
      )}
      <Box marginTop={1}>
        <Text dimColor>
          {error ? `error: ${error} · ` : ''}
          {status ? `${status} · ` : ''}q quit · ↑↓ select · enter attempts · p pause/resume
        </Text>
      </Box>
    </Box>
  );
}

export function TopApp({ source, intervalMs = 1000 }: { source: TopSource; intervalMs?: number }) {
  const { exit } = useApp();
  const [snapshot, setSnapshot] = useState<StatsSnapshot>();
  const [selected, setSelected] = useState(0);
  const [detail, setDetail] = useState<TopViewProps['detail']>();
  const [status, setStatus] = useState('');
  const [error, setError] = useState<string>();
  const detailFor = useRef<string | undefined>(undefined);

  const refresh = useCallback(async () => {
    try {
      const next = await source.stats();
      setSnapshot(next);
      setError(undefined);
      const lid = detailFor.current;
      if (lid) {
        const listener = next.listeners.find((l) => l.id === lid);
        if (listener) setDetail({ listener, deliveries: await source.deliveries(lid) });
      }
    } catch (err) {
      setError((err as Error).message);
    }
  }, [source]);

  useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), intervalMs);
    return () => clearInterval(timer);
  }, [refresh, intervalMs]);

  const listeners = snapshot?.listeners ?? [];
  const current = listeners[Math.min(selected, listeners.length - 1)];

  /** One key; true when it ended top (the keys after it in a chunk are not for top). */
  const onKey = (input: string, key: Keys): boolean => {
    if (input === 'q' || (key.ctrl && input === 'c')) {
      // The value waitUntilExit() resolves with: Ctrl-C is an interruption
      // (exit 130, as in every other command), q a normal end (exit 0).
      exit(input === 'q' ? 'quit' : 'interrupted');
      return true;
    }
    if (key.upArrow) setSelected((s) => Math.max(0, s - 1));
    if (key.downArrow) setSelected((s) => Math.min(Math.max(0, listeners.length - 1), s + 1));
    if (key.escape) {
      detailFor.current = undefined;
      setDetail(undefined);
    }
    if (key.return && current) {
      detailFor.current = current.id;
      void source.deliveries(current.id).then(
        (deliveries) => setDetail({ listener: current, deliveries }),
        (err: unknown) => setError((err as Error).message),
      );
    }
    if (input === 'p' && current) {
      const pause = current.state === 'active';
      void source.setPaused(current.id, pause).then(
        () => {
          setStatus(`${pause ? 'paused' : 'resumed'} ${current.name ?? current.id}`);
          return refresh();
        },
        (err: unknown) => setError((err as Error).message),
      );
    }
    return false;
  };

  useInput((input, key) => {
    // Keys typed faster than top reads them come as one chunk, which Ink hands over whole
    // ("\rq": Enter then q, with no key flag set): each is a key of its own. Without this a
    // q right after an Enter was lost and top stayed up (seen under a loaded CI run).
    if (input.length > 1 && !key.ctrl && !key.meta && PLAIN_KEYS.test(input)) {
      for (const c of input) if (onKey(c === '\r' ? '' : c, { ...NO_KEYS, return: c === '\r' })) return;
      return;
    }
    onKey(input, key);
  });

  return <TopView snapshot={snapshot} selected={Math.min(selected, Math.max(0, listeners.length - 1))} detail={detail} status={status} error={error} />;
}
