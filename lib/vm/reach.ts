// What a slot last saw reaching its guest (reach-<slot>.json). `doctor` runs
// from a Terminal, which macOS exempts from Local Network privacy, so a probe
// of its own would pass where the slot agents are refused: it reads these.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../core/fs.ts";
import type { Transport } from "./guest.ts";

interface Reach {
  slot: number;
  transport: Transport;
  outcome: "ok" | "refused";
  at: string;
  detail?: string;
}

const FILE = /^reach-(\d+)\.json$/;

/** A failure to write never fails the cycle. */
export function recordReach(stateDir: string, reach: Omit<Reach, "at">, now: number): void {
  try {
    writeFileAtomic(join(stateDir, `reach-${reach.slot}.json`), `${JSON.stringify({ ...reach, at: new Date(now).toISOString() })}\n`, 0o644);
  } catch {
    // a diagnostic aid
  }
}

export function readReaches(stateDir: string): Reach[] {
  let names: string[] = [];
  try {
    names = readdirSync(stateDir);
  } catch {
    return [];
  }
  return names.filter((n) => FILE.test(n)).flatMap((n) => {
    try {
      const r = JSON.parse(readFileSync(join(stateDir, n), "utf8")) as Reach;
      return typeof r.slot === "number" && (r.outcome === "ok" || r.outcome === "refused") ? [r] : [];
    } catch {
      return [];
    }
  }).sort((a, b) => a.slot - b.slot);
}
