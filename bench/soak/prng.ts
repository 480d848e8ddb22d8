// The soak's randomness: a small seeded generator (sfc32), so a seed replays
// the same plan. Each stream (the job feeder, each slot's fault deck) is
// seeded from the run's seed and its own keys, so what one stream draws never
// shifts another's draws, however the run's timing interleaves them.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** A whole number in [lo, hi]. */
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
  /** Shuffles in place (Fisher–Yates) and returns the array. */
  shuffle<T>(xs: T[]): T[];
}

/** splitmix32: spreads a key's bits over the whole word. */
function mix(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function rng(...keys: number[]): Rng {
  let h = 0x6a09e667;
  for (const k of keys) h = mix(h ^ mix(k));
  let a = mix(h ^ 1);
  let b = mix(h ^ 2);
  let c = mix(h ^ 3);
  let d = 1;
  const next = (): number => {
    // sfc32 (Chris Doty-Humphrey's small fast counting generator).
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return {
    next,
    int,
    pick: (xs) => xs[int(0, xs.length - 1)]!,
    chance: (p) => next() < p,
    shuffle(xs) {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = int(0, i);
        [xs[i], xs[j]] = [xs[j]!, xs[i]!];
      }
      return xs;
    },
  };
}
