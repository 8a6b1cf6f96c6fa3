/** Listeners (HTTP and command): add, list, show, remove, pause, resume. */
import { access, constants, stat } from 'node:fs/promises';
import { delimiter, resolve as resolvePath } from 'node:path';
import { parseRate, validateFilters } from '../../protocol/choose.js';
import { DiscueError } from '../../protocol/errors.js';
import { START_FROM, isStartFrom } from '../../protocol/requests.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETRY_DELAY_MS,
  DEFAULT_TIMEOUT_MS,
  LONGEST_DURATION_MS,
  MAX_CONCURRENCY,
  MOST_ATTEMPTS,
} from '../../protocol/defaults.js';
import { splitCommand } from '../../protocol/argv.js';
import { newListenerId } from '../../delivery/listeners.js';
import { maskHeaders, maskUrl } from '../../protocol/redact.js';
import { generateSecret, validateSecret } from '../../delivery/signature.js';
import type { ListenerRecord, StartAt } from '../../backend/types.js';
import { isMessageId } from '../../protocol/ids.js';
import { asParams, optionalBoolean, optionalInt, optionalObject, optionalString, requireString } from '../params.js';
import type { HandlerMap } from './types.js';
import { listenerInfo, queueIdOf, queueIdsOf } from './names.js';
import { validateHeaders, validateListenerName, validateUrl } from './validate.js';

export const listenerHandlers = {
  async 'listener.add'(raw, ctx) {
    const params = asParams(raw);
    const kind = params.kind;
    if (kind !== 'http' && kind !== 'exec') throw new DiscueError('INVALID_ARGUMENT', 'kind must be "http" or "exec"');
    const queues = queueIdsOf(ctx, params.queues);
    if (queues.length === 0) throw new DiscueError('INVALID_ARGUMENT', 'a listener needs at least one --queue');
    const name = optionalString(params, 'name');
    if (name !== undefined) validateListenerName(name);
    const from = params.from === undefined ? 'new' : params.from;
    if (!isStartFrom(from) && !(Number.isSafeInteger(from) && (from as number) >= 0)) {
      throw new DiscueError('INVALID_ARGUMENT', `--from takes one of: ${START_FROM.join(', ')}, or a time (ms since epoch)`);
    }
    const record: ListenerRecord = {
      id: newListenerId(),
      kind,
      queues,
      timeoutMs: optionalInt(params, 'timeoutMs', 1, LONGEST_DURATION_MS) ?? DEFAULT_TIMEOUT_MS,
      maxAttempts: optionalInt(params, 'maxAttempts', 1, MOST_ATTEMPTS) ?? DEFAULT_MAX_ATTEMPTS,
      retryDelayMs: optionalInt(params, 'retryDelayMs', 1, LONGEST_DURATION_MS) ?? DEFAULT_RETRY_DELAY_MS,
      concurrency: optionalInt(params, 'concurrency', 1, MAX_CONCURRENCY) ?? DEFAULT_CONCURRENCY,
      state: optionalBoolean(params, 'paused') === true ? 'paused' : 'active',
      createdAt: new Date().toISOString(),
    };
    if (name !== undefined) record.name = name;
    Object.assign(record, choices(params));
    if (record.livenessUrl !== undefined && kind !== 'http') throw new DiscueError('INVALID_ARGUMENT', '--liveness-url goes with --url');
    if (kind === 'http') {
      record.url = validateUrl(requireString(params, 'url'));
      const headers = optionalObject(params, 'headers');
      if (headers) record.headers = validateHeaders(headers);
      const secret = optionalString(params, 'secret');
      record.secret = secret === undefined ? generateSecret() : validateSecret(secret);
      if (optionalBoolean(params, 'cloudevents') === true) record.cloudevents = true;
    } else {
      if (params.cloudevents === true) throw new DiscueError('INVALID_ARGUMENT', 'cloudevents goes with an HTTP listener (--url)');
      const command = requireString(params, 'command');
      const shell = optionalBoolean(params, 'shell') ?? false;
      record.command = shell ? [command] : splitCommand(command);
      if (shell) record.shell = true;
      const cwd = optionalString(params, 'cwd');
      if (cwd !== undefined) record.cwd = cwd;
      // A shell resolves its own words (builtins, functions): only a program run directly is checked.
      if (!shell) await checkProgram(record.command[0]!, cwd ?? process.cwd());
      // On a store several daemons share, a command runs on the host that
      // added it (its program, files and cwd are there), unless --any-host.
      if (ctx.store.supports.clustering && optionalBoolean(params, 'anyHost') !== true) record.host = ctx.engine.hostId;
    }
    const afterIds = optionalObject(params, 'afterIds');
    let start: StartAt = typeof from === 'number' ? { sinceMs: from } : from === 'new' ? 'end' : 'all';
    if (afterIds !== undefined) {
      const byQueue: Record<string, string> = {};
      for (const [queue, id] of Object.entries(afterIds)) {
        if (typeof id !== 'string' || !isMessageId(id)) throw new DiscueError('INVALID_ARGUMENT', `afterIds.${queue} must be a message id`);
        const qid = queueIdOf(ctx, queue);
        if (queues.includes(qid)) byQueue[qid] = id;
      }
      start = { afterIds: byQueue };
    }
    await ctx.engine.listeners.register(record, start);
    // The generated secret is shown once, here; URL and header credentials only to `listener show --secret`.
    const info = listenerInfo(ctx, record, true);
    if (info.url !== undefined) info.url = maskUrl(info.url);
    if (info.headers !== undefined) info.headers = maskHeaders(info.headers);
    return info;
  },

  async 'listener.list'(raw, ctx) {
    const queue = optionalString(asParams(raw), 'queue');
    const listeners = ctx.engine.listeners.list(queue === undefined ? undefined : queueIdOf(ctx, queue));
    await ctx.engine.refreshPending(listeners);
    return listeners.map((l) => listenerInfo(ctx, l));
  },

  async 'listener.get'(raw, ctx) {
    const params = asParams(raw);
    const record = ctx.engine.listeners.resolve(requireString(params, 'ref'));
    await ctx.engine.refreshPending([record]);
    return listenerInfo(ctx, record, optionalBoolean(params, 'secret') ?? false);
  },

  async 'listener.remove'(raw, ctx) {
    const record = ctx.engine.listeners.resolve(requireString(asParams(raw), 'ref'));
    await ctx.engine.listeners.remove(record);
    return { id: record.id };
  },

  async 'listener.pause'(raw, ctx) {
    const record = ctx.engine.listeners.resolve(requireString(asParams(raw), 'ref'));
    await ctx.engine.listeners.setState(record, 'paused');
    return listenerInfo(ctx, record);
  },

  async 'listener.update'(raw, ctx) {
    const params = asParams(raw);
    const record = ctx.engine.listeners.resolve(requireString(params, 'ref'));
    const patch = choices(params, true);
    if (Object.keys(patch).length === 0) throw new DiscueError('USAGE', 'nothing to update: give --filter, --no-filter, --rate, --no-rate, --liveness-url or --no-liveness-url');
    if (patch.livenessUrl !== undefined && record.kind !== 'http') throw new DiscueError('INVALID_ARGUMENT', '--liveness-url goes with HTTP listeners');
    await ctx.engine.listeners.update(record, patch);
    return listenerInfo(ctx, record);
  },

  async 'listener.replay'(raw, ctx) {
    const params = asParams(raw);
    const record = ctx.engine.listeners.resolve(requireString(params, 'ref'));
    const messageId = optionalString(params, 'messageId');
    const sinceMs = optionalInt(params, 'sinceMs', 0, Number.MAX_SAFE_INTEGER);
    if ((messageId === undefined) === (sinceMs === undefined)) throw new DiscueError('INVALID_ARGUMENT', 'replay takes one of sinceMs or messageId');
    if (messageId !== undefined && !isMessageId(messageId)) throw new DiscueError('INVALID_ARGUMENT', `invalid message id ${JSON.stringify(messageId)}`);
    const at = messageId !== undefined ? { messageId } : { sinceMs: sinceMs! };
    const { messages, queues } = await ctx.engine.listeners.replay(record, at, optionalBoolean(params, 'dryRun') ?? false);
    return { messages, queues: queues.map((q) => ctx.store.queueName(q) ?? q) };
  },

  async 'listener.resume'(raw, ctx) {
    const record = ctx.engine.listeners.resolve(requireString(asParams(raw), 'ref'));
    await ctx.engine.listeners.setState(record, 'active');
    return listenerInfo(ctx, record);
  },
} satisfies Partial<HandlerMap>;

/**
 * Filters, rate limit and liveness URL from a request, checked. For an
 * update (`clearable`), null clears one and an empty filter list clears them.
 */
function choices(params: Record<string, unknown>, clearable = false): Partial<Pick<ListenerRecord, 'filters' | 'rate' | 'livenessUrl'>> {
  const out: Partial<Pick<ListenerRecord, 'filters' | 'rate' | 'livenessUrl'>> = {};
  const cleared = (key: string) => clearable && params[key] === null;
  if (cleared('filters')) out.filters = undefined;
  else if (params.filters !== undefined) {
    const filters = validateFilters(params.filters);
    if (filters.length > 0 || clearable) out.filters = filters.length > 0 ? filters : undefined;
  }
  if (cleared('rate')) out.rate = undefined;
  else if (params.rate !== undefined) {
    const rate = parseRate(params.rate);
    out.rate = `${rate.count}/${rate.perMs === 1000 ? 's' : 'm'}`;
  }
  if (cleared('livenessUrl')) out.livenessUrl = undefined;
  else if (params.livenessUrl !== undefined) out.livenessUrl = validateUrl(String(params.livenessUrl));
  return out;
}

/**
 * Refuses a program the daemon could never run, at add time rather than as a
 * dead delivery later. It is resolved the way the delivery will run it: a
 * path relative to the listener's cwd, a bare name on the daemon's PATH.
 */
async function checkProgram(file: string, cwd: string): Promise<void> {
  if (file.includes('/')) {
    const path = resolvePath(cwd, file);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) {
      throw new DiscueError('COMMAND_NOT_FOUND', `${file} does not exist (looked for ${path}); check the path, relative to ${cwd}`);
    }
    if (!info.isFile() || !(await isExecutable(path))) {
      throw new DiscueError(
        'COMMAND_NOT_EXECUTABLE',
        info.isFile() ? `${file} is not executable: run chmod +x ${file}` : `${file} is a directory, not a program`,
      );
    }
    return;
  }
  const dirs = (process.env.PATH ?? '').split(delimiter);
  for (const dir of dirs) {
    // An empty PATH entry means the current directory, as for execvp.
    const path = resolvePath(cwd, dir === '' ? '.' : dir, file);
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && (await isExecutable(path))) return;
  }
  throw new DiscueError(
    'COMMAND_NOT_FOUND',
    `${file} is not on the daemon's PATH (${process.env.PATH ?? 'unset'}); give its full path, or restart the daemon from a shell whose PATH has it`,
  );
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}
