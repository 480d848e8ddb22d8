// Turns what the world recorded into per-cycle figures. The moments come from
// outside both contenders: GitHub's side (sim/github events: a job completed,
// a runner's session opened = "Listening for Jobs") and the sim's tart and
// guest ($SIM_TART_TRACE: each tart process's span and CPU, the guest's lease,
// sshd and exec times). Turnaround = job completed -> the same slot's next
// runner listening. Host overhead = the part of that window in which nothing
// external was on the way: not a tart command on one of the slot's VMs before
// the next VM's `tart run` (stop, delete, clone, set), not the next VM booting
// or restoring until its sshd answers, not the runner starting (its exec
// until listening): the caller's own time, its polling lag included.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { SimEvent } from "../sim/github/types.ts";

export interface TartRecord {
  kind: "tart";
  at_ms: number;
  cmd: string;
  args: string[];
  pid: number;
  ppid: number;
  started_ms: number;
  cpu_us: number;
}
export interface GuestRecord {
  kind: "guest";
  at_ms: number;
  /** The VM's directory ($TART_HOME/vms/<name>). */
  vm: string;
  event: "lease" | "ssh" | "agent" | "exec" | "tart-exec" | "connect" | "refused";
  command?: string;
  /** connect, refused: the peer process and its ancestry; whether it is our binary or one it started. */
  peer?: string;
  ours?: boolean;
}
export type TraceRecord = TartRecord | GuestRecord;

export interface Cycle {
  slot: number;
  /** The runner (and VM) that listened at the end of the window. */
  runner: string;
  turnaroundMs: number;
  hostOverheadMs: number;
  /** The guest reachable (its agent answering for tart exec, else its sshd) -> the runner's command arriving in the guest. */
  readinessLagMs?: number;
  /** sshd answering -> listening, the runner's own start included. */
  sshToListeningMs?: number;
}

/** The runner's command, as both contenders send it. */
const RUNNER_COMMAND = "IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG";

export function readTrace(path: string): TraceRecord[] {
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").flatMap((l) => {
    try {
      return l ? [JSON.parse(l) as TraceRecord] : [];
    } catch {
      return [];
    }
  });
}

/** The last record of each tart process (a `tart run` writes more than one). */
export function tartProcesses(trace: TraceRecord[]): TartRecord[] {
  const byPid = new Map<number, TartRecord>();
  for (const r of trace) if (r.kind === "tart") byPid.set(r.pid, r);
  return [...byPid.values()];
}

/** CPU of the tart processes whose parent (when they last reported) is one of `parents`: the ones those waited for. */
export const tartCpuMs = (trace: TraceRecord[], parents: Set<number>) =>
  tartProcesses(trace).filter((r) => parents.has(r.ppid)).reduce((ms, r) => ms + r.cpu_us / 1000, 0);

/** Total length of the union of intervals, clipped to [from, to]. */
export function coveredMs(intervals: [number, number][], from: number, to: number): number {
  const clipped = intervals.map(([a, b]): [number, number] => [Math.max(a, from), Math.min(b, to)]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of clipped) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

/**
 * Every turnaround in `events` (already limited to one contender's block):
 * for each completed job, the first session its slot opens afterwards.
 * `slotOf` reads the slot from a runner or VM name (they are the same).
 */
export function cycles(events: SimEvent[], trace: TraceRecord[], slotOf: (name: string) => number | undefined): Cycle[] {
  const tart = tartProcesses(trace);
  const guest = trace.filter((r): r is GuestRecord => r.kind === "guest");
  const out: Cycle[] = [];
  for (const done of events.filter((e) => e.kind === "job-completed")) {
    const slot = slotOf(done.runner);
    if (slot === undefined) continue;
    const next = events.find((e) => e.kind === "session-opened" && e.at_ms > done.at_ms && slotOf(e.runner) === slot);
    if (!next) continue;
    const [t0, t1] = [done.at_ms, next.at_ms];
    const vm = next.runner;
    const ofVm = (g: GuestRecord) => basename(g.vm) === vm;
    const runStart = Math.min(...tart.filter((r) => r.cmd === "run" && r.args.includes(vm)).map((r) => r.started_ms));
    const runnerExec = guest.filter((g) => ofVm(g) && (g.event === "exec" || g.event === "tart-exec") && g.command?.startsWith(RUNNER_COMMAND) && g.at_ms <= t1).at(-1);
    const exec = runnerExec?.at_ms;
    // Reachable: the guest agent answering when the runner came through tart exec, else its sshd.
    const upEvent = runnerExec?.event === "tart-exec" ? "agent" : "ssh";
    const sshUp = guest.find((g) => ofVm(g) && g.event === upEvent && g.at_ms >= runStart)?.at_ms;
    // tart commands count until the next VM's `tart run`: what comes after runs beside the boot
    // (deleting finished VMs) or polls it (`tart ip --wait`, whose lag past the lease is the caller's).
    const external: [number, number][] = tart
      .filter((r) => r.cmd !== "run" && r.args.some((a) => slotOf(a) === slot) && r.started_ms < runStart)
      .map((r) => [r.started_ms, Math.min(r.at_ms, runStart)]);
    if (Number.isFinite(runStart) && sshUp !== undefined) external.push([runStart, sshUp]);
    if (exec !== undefined) external.push([exec, t1]);
    out.push({
      slot,
      runner: vm,
      turnaroundMs: t1 - t0,
      hostOverheadMs: t1 - t0 - coveredMs(external, t0, t1),
      ...(sshUp !== undefined && exec !== undefined && { readinessLagMs: exec - sshUp }),
      ...(sshUp !== undefined && { sshToListeningMs: t1 - sshUp }),
    });
  }
  return out;
}

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile; NaN for no data. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
