// bench/run.ts's flags: the scenario (turnaround, or idle: bench/idle.ts),
// which sim profile and scale, how many measured turnarounds per side, the
// start path of `loop`, one or two slots; for idle, the simulated idle time,
// the jobs in it and the seed of their arrival times.
import { parseArgs } from "node:util";
import { PROFILE_NAMES, type ProfileName } from "../sim/tart/profiles.ts";

export interface BenchOptions {
  /** turnaround: loop against the bash loop, jobs back to back; idle: jobs far apart while GitHub retires idle runners. */
  scenario: "turnaround" | "idle";
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
  /** idle: simulated minutes measured (the sim's time: the profile's times against realistic ones, times --scale). */
  idleMinutes: number;
  /** idle: jobs queued at random moments in that time. */
  idleJobs: number;
  /** idle: seed of the jobs' arrival times. */
  seed: number;
  /** Write every measured figure here as JSON. */
  out?: string;
  /** Copy the run's logs, traces and GitHub events here before the world goes. */
  keep?: string;
}

export const USAGE = `usage: npm run bench -- [--scenario turnaround|idle] [--profile scaled|realistic] [--scale X] [--cycles N] [--path cold|snapshot] [--slots 1|2] [--block J] [--job-ms MS] [--idle-minutes M] [--idle-jobs N] [--seed S] [--out FILE] [--keep DIR]
  --scenario   turnaround (default): loop against the bash loop, jobs back to back;
               idle: today's loop (vm.reuse_idle: false), the loop and the bash loop side by side
               while jobs come far apart and GitHub retires idle runners (bench/README.md)
  --profile    sim/tart timing profile (default scaled)
  --scale      multiplies every sim time (default 1, idle 0.25; e.g. 0.25 to run realistic four times faster)
  --cycles     turnarounds measured per side, at least 20 (default 20)
  --path       how loop starts VMs: cold (boot, the default) or snapshot (vm.start: snapshot)
  --slots      VM slots per side (default 1)
  --block      jobs per block; the sides alternate block by block (default 4)
  --job-ms     how long each job runs (default 1000)
  --idle-minutes  idle: simulated minutes measured (default 60)
  --idle-jobs  idle: jobs queued at random moments in them (default 6)
  --seed       idle: seed of those moments (default 1)
  --out        also write the figures as JSON to this file
  --keep       copy the loop's logs, the tart/guest traces and GitHub's events to this directory`;

export class BenchUsageError extends Error {}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: "string", default: "turnaround" },
      profile: { type: "string", default: "scaled" },
      scale: { type: "string" },
      cycles: { type: "string", default: "20" },
      path: { type: "string", default: "cold" },
      slots: { type: "string", default: "1" },
      block: { type: "string", default: "4" },
      "job-ms": { type: "string", default: "1000" },
      "idle-minutes": { type: "string", default: "60" },
      "idle-jobs": { type: "string", default: "6" },
      seed: { type: "string", default: "1" },
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
  if (values.scenario !== "turnaround" && values.scenario !== "idle") throw new BenchUsageError(`--scenario must be turnaround or idle, got '${values.scenario}'`);
  if (values.path !== "cold" && values.path !== "snapshot") throw new BenchUsageError(`--path must be cold or snapshot, got '${values.path}'`);
  return {
    scenario: values.scenario,
    profile: values.profile as ProfileName,
    scale: num("scale", values.scale ?? (values.scenario === "idle" ? "0.25" : "1"), (n) => n > 0 && n <= 10, "a number in (0, 10]"),
    cycles: num("cycles", values.cycles, (n) => Number.isInteger(n) && n >= 20, "a whole number, at least 20"),
    path: values.path,
    slots: num("slots", values.slots, (n) => n === 1 || n === 2, "1 or 2") as 1 | 2,
    block: num("block", values.block, (n) => Number.isInteger(n) && n >= 1, "a whole number, at least 1"),
    jobMs: num("job-ms", values["job-ms"], (n) => Number.isInteger(n) && n >= 0, "whole milliseconds"),
    idleMinutes: num("idle-minutes", values["idle-minutes"], (n) => n >= 10, "at least 10 (simulated minutes)"),
    idleJobs: num("idle-jobs", values["idle-jobs"], (n) => Number.isInteger(n) && n >= 1, "a whole number, at least 1"),
    seed: num("seed", values.seed, (n) => Number.isInteger(n), "a whole number"),
    ...(values.out !== undefined && { out: values.out }),
    ...(values.keep !== undefined && { keep: values.keep }),
  };
}
