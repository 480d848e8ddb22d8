// What an unknown key most likely meant, for "unknown key; did you mean ...?".

/** The message for `key` where only `known` keys are allowed. */
export function unknownKey(key: string, known: readonly string[]): string {
  const near = closest(key, known);
  if (near) return `unknown key; did you mean ${near}?`;
  return known.length > 0 ? `unknown key; expected one of: ${known.join(", ")}` : "unknown key";
}

/** The known key a typo most likely meant: same up to case, `-`/`_`, a short prefix or a few edits. */
function closest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const k = norm(key);
  let best: { name: string; score: number } | undefined;
  for (const name of known) {
    const n = norm(name);
    const isPrefix = Math.min(k.length, n.length) >= 3 && (n.startsWith(k) || k.startsWith(n));
    const distance = editDistance(k, n);
    const score = isPrefix ? Math.min(distance, 0.5) : distance;
    if (score <= Math.max(1, Math.floor(n.length / 4)) && (!best || score < best.score)) best = { name, score };
  }
  return best?.name;
}

/** Edits (insert, delete, substitute, swap two neighbours) from a to b. */
function editDistance(a: string, b: string): number {
  // d[i][j]: edits from a's first i characters to b's first j, filled row by
  // row; a cell outside the table is never the cheapest way (Infinity).
  const d: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    d.push(row);
    for (let j = 1; j <= b.length; j++) {
      let cost = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cost = Math.min(cost, at(i - 2, j - 2) + 1);
      row.push(cost);
    }
  }
  return at(a.length, b.length);
}
