// The soak's rows, measured from the world's state after the run: GitHub's
// jobs and runners, what tart lists, the host file the jobs wrote, the
// slots' JSON log lines, the argv samples, and what the soak itself injected.
import type { JobState, RunnerState } from "../../sim/github/client.ts";
import type { LogLine } from "../../sim/logs.ts";
import type { Injected, Spawn } from "./director.ts";
import type { NeighbourObject } from "./setup.ts";
import { slotPrefix } from "./setup.ts";

/** Faults that kill a job's VM, SSH session or runner: a job they hit fails, and that is counted, not a bug. */
const DEATHS = new Set(["vm-killed", "ssh-drop", "crash-fault", "runner-exit", "reboot"]);
/** More spawns than this in 60 s that neither served a job nor were ended by the soak is a restart storm (see README). */
export const STORM_SPAWNS_PER_MINUTE = 10;

export interface Evidence {
  jobs: JobState[];
  /** Jobs we queued that GitHub never completed by the end. */
  unfinished: JobState[];
  injected: Injected[];
  spawns: Spawn[];
  lines: LogLine[];
  /** Every log line written (slot logs, VM logs, the end's cleanup and next-start runs) with where it came from. */
  logText: { file: string; text: string }[];
  runs: string;
  vmsLeft: string[];
  vmsLeftAfterNextStart: string[];
  runnersLeft: RunnerState[];
  neighbours: NeighbourObject[];
  neighboursNow: { vms: Map<string, { running: boolean; mtimeMs: number | undefined }>; runnerIds: Set<number> };
  findSecrets(text: string): string[];
  argvLeaks: { program: string; secrets: string[] }[];
  argvSamples: number;
  apiCalls: Record<string, number>;
}

export interface Lost {
  job: string;
  runner?: string | undefined;
  why: string;
}

export interface Rows {
  queued: number;
  completed: number;
  succeeded: number;
  diedMidJob: number;
  diedReported: number;
  lostOurs: Lost[];
  duplicates: number;
  dirty: number;
  vmsLeaked: number;
  runnersLeaked: number;
  neighbourTouched: string[];
  neighbourObjects: number;
  logLeaks: { file: string; secrets: string[] }[];
  argvLeaks: number;
  argvSamples: number;
  storms: number;
  maxUnpacedPerMinute: Record<number, number>;
  apiCalls: number;
  apiPerJob: number;
  turnaroundMedianMs: number;
  turnaroundP95Ms: number;
}

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

function spawnServed(sp: Spawn, jobs: JobState[]): boolean {
  const end = sp.exitedAt ?? Date.now();
  return jobs.some((j) => {
    if (!j.runner_name?.startsWith(slotPrefix(sp.slot))) return false;
    return [j.started_at, j.completed_at].some((t) => t !== null && Date.parse(t) >= sp.startedAt && Date.parse(t) <= end);
  });
}

/** Per slot: the most spawns in any 60 s that served no job and were not ended by the soak. */
function unpacedPerMinute(spawns: Spawn[], jobs: JobState[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const slot of new Set(spawns.map((s) => s.slot))) {
    const times = spawns.filter((s) => s.slot === slot && !s.signalledBySoak && !spawnServed(s, jobs)).map((s) => s.startedAt).sort((a, b) => a - b);
    out[slot] = Math.max(0, ...times.map((t, i) => times.slice(i).filter((u) => u - t < 60_000).length));
  }
  return out;
}

/**
 * The VM each runner ran in, from the slots' `token.done` lines (a runner is
 * logged with the VM it was made for). A runner is named after its VM, except
 * one made in a VM whose runner GitHub retired idle (lib/slot/cycle.ts
 * replaceRunner) or one renamed after a 409: a fault that killed that VM
 * killed its job too.
 */
export function vmsOfRunners(lines: LogLine[]): Map<string, string> {
  const vmOf = new Map<string, string>();
  for (const l of lines) {
    if (l.event === "token.done" && typeof l.runner === "string" && typeof l.vm === "string") vmOf.set(l.runner, l.vm);
  }
  return vmOf;
}

export function measure(e: Evidence): Rows {
  const vmOf = vmsOfRunners(e.lines);
  const lostOurs: Lost[] = [];
  let diedMidJob = 0;
  let diedReported = 0;
  let dirty = 0;
  for (const j of e.jobs) {
    if (j.result !== "Failed") continue;
    if (j.output?.includes("dirty VM")) {
      dirty++;
      continue;
    }
    const vm = j.runner_name === undefined ? undefined : (vmOf.get(j.runner_name) ?? j.runner_name);
    const killedBy = e.injected.filter((i) => i.applied && DEATHS.has(i.kind) && vm !== undefined && i.vms.includes(vm));
    if (killedBy.length > 0) {
      diedMidJob++;
      if (e.lines.some((l) => l.event === "job.lost" && (l.job === j.name || l.runner === j.runner_name || l.vm === vm))) diedReported++;
    } else {
      lostOurs.push({ job: j.name, runner: j.runner_name, why: j.failure ?? `failed: ${j.output?.slice(0, 200) ?? "no output"}` });
    }
  }
  for (const j of e.unfinished) lostOurs.push({ job: j.name, runner: j.runner_name, why: `still ${j.status} at the end` });

  const runs = new Map<string, number>();
  for (const n of e.runs.split("\n").filter(Boolean)) runs.set(n, (runs.get(n) ?? 0) + 1);
  const duplicates = [...runs.values()].filter((c) => c > 1).length + e.jobs.filter((j) => j.attempts > 1).length;

  const neighbourTouched = e.neighbours.flatMap((o) => {
    if (o.kind === "runner") return e.neighboursNow.runnerIds.has(o.id!) ? [] : [`runner ${o.name} deleted`];
    const vm = e.neighboursNow.vms.get(o.name);
    if (!vm) return [`VM ${o.name} deleted`];
    if (vm.running) return [`VM ${o.name} started`];
    return vm.mtimeMs === o.mtimeMs ? [] : [`VM ${o.name} changed`];
  });

  const logLeaks = e.logText.flatMap(({ file, text }) =>
    text.split("\n").flatMap((line) => {
      const secrets = e.findSecrets(line);
      return secrets.length > 0 ? [{ file, secrets }] : [];
    }),
  );

  const maxUnpacedPerMinute = unpacedPerMinute(e.spawns, e.jobs);
  const completed = e.jobs.filter((j) => j.status === "completed");
  const apiCalls = Object.values(e.apiCalls).reduce((a, b) => a + b, 0);
  const turnaround = completed.filter((j) => j.result === "Succeeded").map((j) => Date.parse(j.completed_at!) - Date.parse(j.queued_at));
  return {
    queued: e.jobs.length,
    completed: completed.length,
    succeeded: completed.filter((j) => j.result === "Succeeded").length,
    diedMidJob,
    diedReported,
    lostOurs,
    duplicates,
    dirty,
    vmsLeaked: new Set([...e.vmsLeft, ...e.vmsLeftAfterNextStart]).size,
    runnersLeaked: e.runnersLeft.length,
    neighbourTouched,
    neighbourObjects: e.neighbours.length,
    logLeaks,
    argvLeaks: e.argvLeaks.length,
    argvSamples: e.argvSamples,
    storms: Object.values(maxUnpacedPerMinute).filter((n) => n > STORM_SPAWNS_PER_MINUTE).length,
    maxUnpacedPerMinute,
    apiCalls,
    apiPerJob: completed.length > 0 ? apiCalls / completed.length : 0,
    turnaroundMedianMs: percentile(turnaround, 50),
    turnaroundP95Ms: percentile(turnaround, 95),
  };
}

/** The one table the soak prints (Markdown). */
export function table(r: Rows, o: { seed: number; wallS: number; faults: number }): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const rows: [string, string][] = [
    ["seed", String(o.seed)],
    ["jobs queued", String(r.queued)],
    ["completed", `${r.completed} (${r.succeeded} succeeded)`],
    ["failed because their VM died mid-job (injected crash, reboot, SSH drop; each reported in the log)", `${r.diedMidJob} (${r.diedReported} reported)`],
    ["lost to our own actions (must be 0)", String(r.lostOurs.length)],
    ["duplicate runs (must be 0)", String(r.duplicates)],
    ["jobs that found a used VM (must be 0)", String(r.dirty)],
    ["VMs leaked (must be 0)", String(r.vmsLeaked)],
    ["runners leaked after the next launch (must be 0)", String(r.runnersLeaked)],
    ["neighbour objects touched (must be 0)", `${r.neighbourTouched.length} of ${r.neighbourObjects}`],
    ["secrets in logs or argv (must be 0)", `${r.logLeaks.length + r.argvLeaks} (${r.argvSamples} argv samples)`],
    ["slot restart storms (must be 0)", `${r.storms} (most unpaced spawns in 60 s: ${Object.entries(r.maxUnpacedPerMinute).map(([k, v]) => `slot ${k}: ${v}`).join(", ")})`],
    ["faults injected", String(o.faults)],
    ["API calls per job", `${r.apiPerJob.toFixed(2)} (${r.apiCalls} calls)`],
    ["turnaround median / p95 (queued to completed)", `${s(r.turnaroundMedianMs)} / ${s(r.turnaroundP95Ms)}`],
    ["wall time", `${Math.round(o.wallS)} s`],
  ];
  return ["| row | value |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
}

/** The must-be-0 rows all are. */
export const clean = (r: Rows) =>
  r.lostOurs.length + r.duplicates + r.dirty + r.vmsLeaked + r.runnersLeaked + r.neighbourTouched.length + r.logLeaks.length + r.argvLeaks + r.storms === 0;
