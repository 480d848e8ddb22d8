// Durations as operators write them in the config and on command lines:
// "90s", "3m", "6h", "1h30m", "500ms" (units ms, s, m, h; parts add up).
import { UsageError } from "./errors.ts";

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** A duration string that is not one of the accepted forms. */
export class DurationError extends UsageError {}

/** Milliseconds in `s`; throws DurationError on anything but <number><unit> parts. */
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
