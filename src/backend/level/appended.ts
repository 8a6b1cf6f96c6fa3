/**
 * One append as the consumers of its queue take it. A consumer with
 * filters needs where the messages it takes are in the batch: the batch is
 * indexed by name once, for all of them, so a listener taking one name of a
 * hundred pays for what it takes, not for the 99 of every 100 it skips (a
 * hundred such listeners on one queue would otherwise test every message a
 * hundred times).
 */
import type { Envelope } from '../types.js';

export class Appended {
  /** Name → where messages of that name are in the batch, ascending; made on first use. */
  private index: Map<string | undefined, number[]> | undefined;

  constructor(readonly messages: Envelope[]) {}

  /**
   * Where the messages a listener takes are, ascending, from `from` on:
   * its literal names looked up when it has them, else each distinct name
   * in the batch tested once. The answer may be the index's own list: read it only.
   */
  taken(matches: (name: string | undefined) => boolean, names: readonly string[] | undefined, from: number): readonly number[] {
    const index = (this.index ??= indexByName(this.messages));
    const lists: number[][] = [];
    if (names) {
      for (const name of names) {
        const at = index.get(name);
        if (at) lists.push(at);
      }
    } else {
      for (const [name, at] of index) if (matches(name)) lists.push(at);
    }
    const all = lists.length === 1 ? lists[0]! : lists.flat().sort((a, b) => a - b);
    return from === 0 ? all : all.filter((i) => i >= from);
  }
}

function indexByName(messages: Envelope[]): Map<string | undefined, number[]> {
  const index = new Map<string | undefined, number[]>();
  for (let i = 0; i < messages.length; i++) {
    const name = messages[i]!.name;
    const at = index.get(name);
    if (at) at.push(i);
    else index.set(name, [i]);
  }
  return index;
}
