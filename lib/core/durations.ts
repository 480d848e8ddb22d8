// Durations as operators write them: "90s", "1h30m", "500ms" (parts add up).
import { UsageError } from "./errors.ts";

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
/** Unanchored, for schemas to build on. */
export const DURATION_SYNTAX = /(?:\d+(?:\.\d+)?(?:ms|s|m|h))+/;
const WHOLE = new RegExp(`^${DURATION_SYNTAX.source}$`);
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

export class DurationError extends UsageError {}

export function parseDuration(s: string): number {
  if (!WHOLE.test(s)) {
    throw new DurationError(`bad duration ${JSON.stringify(s)}: use a number with a unit (ms, s, m, h), e.g. 90s, 3m, 6h or 1h30m`);
  }
  let total = 0;
  for (const [, amount, unit] of s.matchAll(PART)) total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  const ms = Math.round(total);
  if (!Number.isSafeInteger(ms)) throw new DurationError(`bad duration ${JSON.stringify(s)}: too long`);
  return ms;
}

/** 65535000 is "18h12m15s". */

export function formatDuration(ms: number): string {
  let rest = ms;
  let out = "";
  for (const [unit, size] of Object.entries(UNIT_MS)) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out || "0ms";
}
