/**
 * The HTTP API of a sandbox's daemon: started by the CLI with `daemon start
 * --http 127.0.0.1:0`, its URL read from `daemon status --json`, tokens made
 * with `discue token create`. Requests go through real HTTP (fetch).
 */
import { expect } from 'vitest';
import type { Sandbox } from './sandbox.js';
import { ok } from './discue.js';

export interface Api {
  url: string;
  /** A token per name, created with the scopes given. */
  token(name: string, ...scopes: string[]): Promise<string>;
  request(method: string, path: string, options?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
}

export async function startApi(sb: Sandbox, env: Record<string, string> = {}): Promise<Api> {
  const started = await sb.run(['daemon', 'start', '--http', '127.0.0.1:0'], { env });
  expect(started.code, started.stderr).toBe(0);
  const status = JSON.parse(await ok(sb, ['daemon', 'status', '--json'])) as { http?: string };
  expect(status.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const url = status.http!;
  return {
    url,
    async token(name, ...scopes) {
      const args = ['token', 'create', '--name', name];
      for (const scope of scopes) args.push('--scope', scope);
      const token = (await ok(sb, args)).trim();
      expect(token).toMatch(/^dq_[A-Za-z0-9_-]{43}$/);
      return token;
    },
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      let body: string | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: kept as text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}

/** Asserts an error answer: its status and stable code. */
export function expectHttpError(res: { status: number; body: any }, status: number, code: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body?.error?.code, JSON.stringify(res.body)).toBe(code);
  expect(typeof res.body.error.message).toBe('string');
}
