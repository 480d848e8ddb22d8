// bench/run.ts's flags: which sim profile and scale, how many measured
// turnarounds per side, the start path of `loop`, one or two slots.
import { parseArgs } from "node:util";
import { PROFILE_NAMES, type ProfileName } from "../sim/tart/profiles.ts";

export interface BenchOptions {
  profile: ProfileName;
  scale: number;
  /** Turnarounds measured per side (loop, baseline). */
  cycles: number;
  path: "cold" | "snapshot";
  slots: 1 | 2;
  /** Jobs per block: each side runs in blocks, alternating, and a block of J jobs gives J turnarounds. */
  block: number;
  /** How long each job runs (its script sleeps), long enough for the loop's pre-clone to finish. */
  jobMs: number;
  /** Write every measured figure here as JSON. */
  out?: string;
  /** Copy the run's logs, traces and GitHub events here before the world goes. */
  keep?: string;
}

export const USAGE = `usage: npm run bench -- [--profile scaled|realistic] [--scale X] [--cycles N] [--path cold|snapshot] [--slots 1|2] [--block J] [--job-ms MS] [--out FILE] [--keep DIR]
  --profile    sim/tart timing profile (default scaled)
  --scale      multiplies every sim time (default 1; e.g. 0.25 to run realistic four times faster)
  --cycles     turnarounds measured per side, at least 20 (default 20)
  --path       how loop starts VMs: cold (boot, the default) or snapshot (vm.start: snapshot)
  --slots      VM slots per side (default 1)
  --block      jobs per block; the sides alternate block by block (default 4)
  --job-ms     how long each job runs (default 1000)
  --out        also write the figures as JSON to this file
  --keep       copy the loop's logs, the tart/guest traces and GitHub's events to this directory`;

export class BenchUsageError extends Error {}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      profile: { type: "string", default: "scaled" },
      scale: { type: "string", default: "1" },
      cycles: { type: "string", default: "20" },
      path: { type: "string", default: "cold" },
      slots: { type: "string", default: "1" },
      block: { type: "string", default: "4" },
      "job-ms": { type: "string", default: "1000" },
      out: { type: "string" },
      keep: { type: "string" },
    },
    strict: true,
  });
  const num = (name: string, v: string, ok: (n: number) => boolean, what: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || !ok(n)) throw new BenchUsageError(`--${name} must be ${what}, got '${v}'`);
    return n;
  };
  if (!(PROFILE_NAMES as readonly string[]).includes(values.profile)) throw new BenchUsageError(`--profile must be one of ${PROFILE_NAMES.join(", ")}, got '${values.profile}'`);
  if (values.path !== "cold" && values.path !== "snapshot") throw new BenchUsageError(`--path must be cold or snapshot, got '${values.path}'`);
  return {
    profile: values.profile as ProfileName,
    scale: num("scale", values.scale, (n) => n > 0 && n <= 10, "a number in (0, 10]"),
    cycles: num("cycles", values.cycles, (n) => Number.isInteger(n) && n >= 20, "a whole number, at least 20"),
    path: values.path,
    slots: num("slots", values.slots, (n) => n === 1 || n === 2, "1 or 2") as 1 | 2,
    block: num("block", values.block, (n) => Number.isInteger(n) && n >= 1, "a whole number, at least 1"),
    jobMs: num("job-ms", values["job-ms"], (n) => Number.isInteger(n) && n >= 0, "whole milliseconds"),
    ...(values.out !== undefined && { out: values.out }),
    ...(values.keep !== undefined && { keep: values.keep }),
  };
}
