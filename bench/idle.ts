// The idle scenario (npm run bench -- --scenario idle): jobs arrive at
// random moments (seeded), far apart compared with GitHub's retirement of
// idle runners, and three contenders serve them side by side, at the same
// time, each on a simulated Mac of its own: today's loop (vm.reuse_idle:
// false: a new VM after every retirement), the loop (a new runner in the same
// VM) and the plain bash loop. Time is the sim's: the profile's times against
// the realistic ones, times --scale; GitHub retires an idle runner 2
// simulated minutes after it registered (the short end of the 2 to 6 it
// takes), and vm.idle_reuse_max and vm.next_vm_max_age are their defaults
// (an hour each) in simulated time. bench/README.md defines the figures.
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { SimEvent } from "../sim/github/types.ts";
import { PROFILES } from "../sim/tart/profiles.ts";
import { startWorld } from "../sim/world.ts";
import { ensureBinaries, until } from "../tests/helpers/e2e.ts";
import { baselineContender, loopContender, type Contender } from "./contenders.ts";
import { median, percentile, readTrace, tartProcesses } from "./measure.ts";
import type { BenchOptions } from "./options.ts";
import { machine } from "./report.ts";

/** GitHub retires an idle JIT runner 2 to 6 minutes after it registered; the sim takes the short end. */
const RETIRE_REAL_MS = 120_000;
const HOUR_MS = 3_600_000;

/** Simulated time per host millisecond: the profile's boot against a real Mac's, times the scale. */
export function timeFactor(o: Pick<BenchOptions, "profile" | "scale">): number {
  return (PROFILES[o.profile].boot_ms / PROFILES.realistic.boot_ms) * o.scale;
}

/** mulberry32: a small seeded PRNG, so a seed gives the same arrival times on every machine. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * When the jobs arrive, ms after the window opens: one at a random moment in
 * the middle 70% of each of `n` equal parts of the window, so they are far
 * apart (a part is many retirements long) yet not evenly spaced.
 */
export function arrivals(n: number, windowMs: number, seed: number): number[] {
  const next = random(seed);
  const part = windowMs / n;
  return Array.from({ length: n }, (_, i) => Math.round((i + 0.15 + 0.7 * next()) * part));
}

export interface IdleFigures {
  name: string;
  slots: number;
  /** Host ms the window lasted, and the simulated hours it stands for. */
  windowMs: number;
  simHours: number;
  /** VM starts (`tart run`: boots, or restores on the snapshot path) in the window. */
  boots: number;
  jobs: number;
  jobsSucceeded: number;
  /** Runners GitHub retired idle in the window. */
  retirements: number;
  apiCalls: number;
  /** Slot time not spent running a job, in simulated hours. */
  idleSlotHours: number;
  /** Queued (the bench's enqueue call) to GitHub handing the job to a runner, host ms. */
  pickupMs: number[];
}

interface Side {
  c: Contender;
  trace: string;
}

/** Jobs queued for each contender (same moments, each its own label): id -> queued at (host ms). */
type Queued = Map<number, number>;

export async function idleBench(o: BenchOptions): Promise<void> {
  ensureBinaries(["loop", "cleanup"]);
  const loadBefore = loadavg()[0]!;
  const f = timeFactor(o);
  const retireMs = Math.round(RETIRE_REAL_MS * f);
  const windowMs = Math.round(o.idleMinutes * 60_000 * f);
  const simMinutes = (m: number) => `${Math.round(m * 60_000 * f)}ms`;
  console.error(`bench idle: ${o.idleMinutes} simulated minutes = ${Math.round(windowMs / 1000)} s here; GitHub retires an idle runner after ${retireMs} ms; ${o.idleJobs} jobs (seed ${o.seed})`);
  // A short session lease makes the sim look for idle runners every 500 ms, so retirements come on time.
  const world = await startWorld({
    registry: "optional",
    github: { orgs: ["bench-old", "bench-loop", "bench-base"], idleJitRunnerRetireMs: retireMs, sessionLeaseMs: 2_000 },
    notice: (l) => console.error(l),
  });
  try {
    const dir = join(world.dir, "bench");
    mkdirSync(dir, { recursive: true });
    const stage = (name: string) => ({ world, host: world.addHost(name, { profile: o.profile, scale: o.scale }), dir, o });
    // Their defaults, in simulated time.
    const vm = { idle_reuse_max: simMinutes(60), next_vm_max_age: simMinutes(60) };
    const sides: Side[] = [
      loopContender(stage("today"), { name: "loop-today", org: "bench-old", prefix: "bo", vm: { ...vm, reuse_idle: false } }),
      loopContender(stage("loop"), { name: "loop", org: "bench-loop", prefix: "bl", vm: { ...vm, reuse_idle: true } }),
      baselineContender(stage("base")),
    ].map((c) => ({ c, trace: join(dir, `trace-idle-${c.name}.jsonl`) }));
    process.on("exit", () => sides.forEach((s) => s.c.kill()));
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

    for (const s of sides) s.c.start(s.trace);
    // Warm: every slot of every side has listened once (its first launch's one-off calls are behind it).
    await until("every slot listening", async () => {
      const { events } = await world.gh.state();
      return sides.every(({ c }) => Array.from({ length: o.slots }, (_, i) => i + 1).every((slot) => events.some((e) => e.kind === "session-opened" && c.slotOf(e.runner) === slot)));
    }, 10 * 60_000, 100);
    const before = await world.gh.state();
    const t0 = Date.now();
    const queued: Queued[] = sides.map(() => new Map());
    for (const [i, at] of arrivals(o.idleJobs, windowMs, o.seed).entries()) {
      const wait = t0 + at - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await Promise.all(sides.map(async ({ c }, k) => {
        const queuedAt = Date.now();
        const job = await world.gh.enqueueJob({ name: `idle-${c.name}-${i}`, labels: [c.label], script: `sleep ${o.jobMs / 1000}` });
        queued[k]!.set(job.id, queuedAt);
      }));
      console.error(`bench idle: job ${i + 1}/${o.idleJobs} queued at ${Math.round((Date.now() - t0) / 1000)} s (load ${loadavg()[0]!.toFixed(1)})`);
    }
    const rest = t0 + windowMs - Date.now();
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    // The window closes once every job is done and each slot listens again (a job's successor VM is inside it).
    const after = await until("every job done and each slot listening again", async () => {
      const s = await world.gh.state();
      const ok = sides.every(({ c }, k) => {
        const done = s.events.filter((e) => e.kind === "job-completed" && e.job !== undefined && queued[k]!.has(e.job));
        return done.length === queued[k]!.size && done.every((d) => s.events.some((e) => e.kind === "session-opened" && e.at_ms > d.at_ms && c.slotOf(e.runner) === c.slotOf(d.runner)));
      });
      return ok && s;
    }, 10 * 60_000, 100);
    const t1 = Date.now();
    await Promise.all(sides.map((s) => s.c.stop()));

    const figures = sides.map(({ c, trace }, k): IdleFigures => {
      const mine = (e: SimEvent) => e.at_ms >= t0 && e.at_ms <= t1 && c.slotOf(e.runner) !== undefined;
      const events = after.events.filter(mine);
      const ids = queued[k]!;
      const started = new Map(events.filter((e) => e.kind === "job-started").map((e) => [e.job!, e.at_ms]));
      const completed = new Map(events.filter((e) => e.kind === "job-completed").map((e) => [e.job!, e.at_ms]));
      const busyMs = [...ids.keys()].reduce((n, id) => n + ((completed.get(id) ?? 0) - (started.get(id) ?? 0)), 0);
      const runs = tartProcesses(readTrace(trace)).filter((r) => r.cmd === "run" && r.started_ms >= t0 && r.started_ms <= t1);
      const calls = (s: typeof before) => Object.values(s.requests.byAccount[c.org] ?? {}).reduce((a, b) => a + b, 0);
      return {
        name: c.name,
        slots: o.slots,
        windowMs: t1 - t0,
        simHours: (t1 - t0) / f / HOUR_MS,
        boots: runs.length,
        jobs: ids.size,
        jobsSucceeded: after.jobs.filter((j) => ids.has(j.id) && j.result === "Succeeded").length,
        retirements: events.filter((e) => e.kind === "runner-retired").length,
        apiCalls: calls(after) - calls(before),
        idleSlotHours: (o.slots * (t1 - t0) - busyMs) / f / HOUR_MS,
        pickupMs: [...ids].map(([id, at]) => (started.get(id) ?? Number.NaN) - at),
      };
    });
    console.log(renderIdle(o, f, retireMs, figures, machine(loadBefore)));
    if (o.out) writeFileSync(o.out, `${JSON.stringify({ options: o, timeFactor: f, retireMs, figures }, null, 2)}\n`);
    if (o.keep) {
      mkdirSync(o.keep, { recursive: true });
      writeFileSync(join(o.keep, "idle-events.json"), JSON.stringify(after.events));
    }
  } finally {
    await world.stop();
  }
}

/** Per slot and simulated idle hour: VM starts not owed to a job (each job's VM is replaced after it), and API calls not owed to one (its successor's runner). */
export function perIdleHour(x: IdleFigures): { boots: number; calls: number; callsPerRetirement: number } {
  return {
    boots: (x.boots - x.jobs) / x.idleSlotHours,
    calls: (x.apiCalls - x.jobs) / x.idleSlotHours,
    callsPerRetirement: x.retirements === 0 ? Number.NaN : (x.apiCalls - x.jobs) / x.retirements,
  };
}

export function renderIdle(o: BenchOptions, f: number, retireMs: number, figures: IdleFigures[], m: ReturnType<typeof machine>): string {
  const n = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
  const per = figures.map(perIdleHour);
  const ms = (xs: number[], p: number) => n(percentile(xs.filter(Number.isFinite), p), 0);
  const header = `| | ${figures.map((x) => x.name).join(" | ")} |`;
  const rows: [string, (x: IdleFigures, i: number) => string][] = [
    ["VM boots (or restores) per slot per idle hour", (_, i) => n(per[i]!.boots)],
    ["GitHub API calls per slot per idle hour", (_, i) => n(per[i]!.calls)],
    ["GitHub API calls per retirement", (_, i) => n(per[i]!.callsPerRetirement, 2)],
    ["pickup wait, median (ms)", (x) => ms(x.pickupMs, 50)],
    ["pickup wait, p95 (ms)", (x) => ms(x.pickupMs, 95)],
    ["runners retired idle", (x) => String(x.retirements)],
    ["VM boots (or restores), all", (x) => String(x.boots)],
    ["GitHub API calls, all", (x) => String(x.apiCalls)],
    ["jobs succeeded", (x) => `${x.jobsSucceeded} of ${x.jobs}`],
  ];
  const first = figures[0]!;
  return [
    `Idle scenario: ${o.idleJobs} jobs at random moments (seed ${o.seed}) in ${n(first.simHours, 2)} simulated hours (${Math.round(first.windowMs / 1000)} s here), ${o.slots} slot${o.slots === 1 ? "" : "s"} a side; ` +
      `profile ${o.profile} x ${o.scale} (1 simulated minute = ${Math.round(60_000 * f)} ms); GitHub retires an idle runner ${Math.round(retireMs / f / 1000)} simulated s (${retireMs} ms) after it registered; ` +
      `pickup waits in host ms. ${m.cpu}, ${m.cores} cores, load ${m.loadBefore.toFixed(1)} -> ${m.loadAfter.toFixed(1)}.`,
    "",
    header,
    `| --- | ${figures.map(() => "---").join(" | ")} |`,
    ...rows.map(([label, f]) => `| ${label} | ${figures.map((x, i) => f(x, i)).join(" | ")} |`),
    "",
    `median pickup: ${figures.map((x) => `${x.name} ${n(median(x.pickupMs.filter(Number.isFinite)), 0)} ms`).join(", ")}`,
  ].join("\n");
}
