/**
 * What the value of an option or a positional argument names, declared where
 * the command defines it, so shell completion (src/cli/completion/) offers
 * the right things without guessing from option names or placeholders.
 *
 * A fixed set of words is commander's own `.choices([...])`, which also
 * refuses anything else before the command runs. `declareValue` is for the
 * rest: names that exist in the running daemon (queues, listeners), paths,
 * commands, and words a command checks itself for a better error (config keys).
 * A value with neither is free text (a URL, a duration): nothing to offer.
 */
import type { Argument, Option } from 'commander';

/** What a value completes to. */
export type ValueKind =
  | { kind: 'queues' }
  | { kind: 'listeners' }
  | { kind: 'files' }
  | { kind: 'dirs' }
  | { kind: 'commands' }
  | { kind: 'words'; words: readonly string[] }
  /** Free text (a URL, a name, a duration): no suggestions. */
  | { kind: 'text' };

export const QUEUES: ValueKind = { kind: 'queues' };
export const LISTENERS: ValueKind = { kind: 'listeners' };
export const FILES: ValueKind = { kind: 'files' };
export const DIRS: ValueKind = { kind: 'dirs' };
export const COMMANDS: ValueKind = { kind: 'commands' };

export interface ValueSpec {
  kind?: ValueKind;
  /** An option given more than once collects its values (commander only knows variadic ones). */
  repeatable?: boolean;
}

const specs = new WeakMap<Option | Argument, ValueSpec>();

/** Declares what `target`'s value names; returns it for commander's addOption/addArgument. */
export function declareValue<T extends Option | Argument>(target: T, spec: ValueSpec): T {
  specs.set(target, spec);
  return target;
}

/** What was declared for `target` ({} if nothing). */
export function declaredValue(target: Option | Argument): ValueSpec {
  return specs.get(target) ?? {};
}
