/**
 * "Did you mean ...?" for names a user typed: the closest known name by edit
 * distance, the way commander suggests commands. Shared by the daemon (unknown
 * queues, so library users get it too) and the CLI (field names).
 */

/** Levenshtein distance, with a swap of two neighbours counted as one edit (Damerau, optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `typed`, if it is close enough to be a typo: at
 * most a third of its length away, ties broken by order. Case is ignored,
 * so `Orders` finds `orders`.
 */
export function closest(typed: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    if (name === typed) continue;
    const distance = editDistance(typed.toLowerCase(), name.toLowerCase());
    if (distance < bestDistance && distance <= Math.max(1, Math.floor(name.length / 3))) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/** "; did you mean "orders"?" or "". */
export function didYouMean(typed: string, known: Iterable<string>): string {
  const name = closest(typed, known);
  return name === undefined ? '' : `; did you mean "${name}"?`;
}
