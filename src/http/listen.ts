/**
 * The HTTP API's address, checked where it is given (`daemon start`, before
 * a daemon is spawned) and again where it binds. Cheap: no server code here.
 */
import { isIP } from 'node:net';
import { DiscueError } from '../protocol/errors.js';

export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    throw new DiscueError('INVALID_ARGUMENT', `http.listen takes HOST:PORT (127.0.0.1:7070, [::1]:7070), got ${JSON.stringify(text)}`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host.startsWith('::ffff:127.');
}

/** A network address (not loopback) only with TLS, or when the user says so explicitly. */
export function assertSafeBind(host: string, tls: boolean, insecure: boolean): void {
  if (tls || insecure || isLoopback(host)) return;
  throw new DiscueError(
    'INVALID_ARGUMENT',
    `the HTTP API listens on ${host} only with TLS (http.tlsCert and http.tlsKey) or with --http-insecure; without them, on loopback only (127.0.0.1, ::1, localhost)`,
  );
}
