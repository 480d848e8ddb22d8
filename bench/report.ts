// The bench's tables, as Markdown (they go into the README as printed).
import { cpus, loadavg } from "node:os";
import type { SimTartSettings } from "../sim/tart/settings.ts";
import { median, percentile, type Cycle } from "./measure.ts";
import type { BenchOptions } from "./options.ts";
import type { Startup } from "./startup.ts";

export interface SideResult {
  cycles: Cycle[];
  jobs: number;
  jobsFailed: number;
  /** Runner sessions opened: cycles that reached "Listening" (a block's last one is stopped there). */
  sessions: number;
  /** Sessions and API calls after the first block (its one-off calls). */
  steadySessions: number;
  steadyApiCalls: number;
  /** CPU of the contender's processes minus tart's, ms. */
  hostCpuMs: number;
  selfCpuMs: number;
  peakRssKb: number;
  unreaped: number;
}

export interface Machine {
  cpu: string;
  cores: number;
  loadBefore: number;
  loadAfter: number;
}

export function machine(loadBefore: number): Machine {
  return { cpu: cpus()[0]?.model.trim() ?? "unknown", cores: cpus().length, loadBefore, loadAfter: loadavg()[0]! };
}

const ms = (n: number) => (Number.isFinite(n) ? String(Math.round(n)) : "–");
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}` : "–");

function rows(loop: SideResult, base: SideResult): [string, number, number][] {
  const col = (r: SideResult, f: (c: Cycle) => number | undefined) => r.cycles.map(f).filter((v): v is number => v !== undefined);
  const stat = (label: string, f: (c: Cycle) => number | undefined): [string, number, number][] => [
    [`${label} median (ms)`, median(col(loop, f)), median(col(base, f))],
    [`${label} p95 (ms)`, percentile(col(loop, f), 95), percentile(col(base, f), 95)],
  ];
  return [
    ...stat("turnaround", (c) => c.turnaroundMs),
    ...stat("readiness lag", (c) => c.readinessLagMs),
    [`SSH reachable -> listening median (ms)`, median(col(loop, (c) => c.sshToListeningMs)), median(col(base, (c) => c.sshToListeningMs))],
    ...stat("host overhead", (c) => c.hostOverheadMs),
    ["GitHub API calls per cycle (after block 1)", loop.steadyApiCalls / loop.steadySessions, base.steadyApiCalls / base.steadySessions],
    ["host CPU per cycle (ms)", loop.hostCpuMs / loop.sessions, base.hostCpuMs / base.sessions],
    ["  of it the controlling process (ms)", loop.selfCpuMs / loop.sessions, base.selfCpuMs / base.sessions],
    ["peak RSS, controlling process (MiB)", loop.peakRssKb / 1024, base.peakRssKb / 1024],
  ];
}

export function render(o: BenchOptions, t: SimTartSettings, m: Machine, loop: SideResult, base: SideResult, startup: Startup[]): string {
  const lines = [
    `machine: ${m.cpu}, ${m.cores} cores; load average ${m.loadBefore.toFixed(1)} at start, ${m.loadAfter.toFixed(1)} at end`,
    `profile: ${o.profile} x ${o.scale} (boot ${t.boot_ms} ms, ssh ${t.ssh_ms}, runner start ${t.runner_start_ms}, clone ${t.clone_ms}, stop ${t.stop_ms}, delete ${t.delete_ms}, restore ${t.restore_ms}); ` +
      `loop path ${o.path}; ${o.slots} slot(s) each; ${loop.cycles.length} + ${base.cycles.length} turnarounds in alternating blocks of ${o.block} jobs of ${o.jobMs} ms`,
    "",
    "| figure | loop | baseline | loop/baseline |",
    "| --- | ---: | ---: | ---: |",
    ...rows(loop, base).map(([label, a, b]) => `| ${label} | ${fmt(label, a)} | ${fmt(label, b)} | ${ratio(a, b)} |`),
    `| jobs failed | ${loop.jobsFailed} of ${loop.jobs} | ${base.jobsFailed} of ${base.jobs} | |`,
    "",
    "| start-up (--help, median of 15) | wall (ms) | CPU (ms) |",
    "| --- | ---: | ---: |",
    ...startup.map((s) => `| ${s.name} | ${ms(s.wallMs)} | ${ms(s.cpuMs)} |`),
  ];
  if (loop.unreaped > 0) lines.push("", `note: ${loop.unreaped} child process(es) still ran when their loop exited (the next VM's tart run, booted ahead); neither side of the CPU figure counts them`);
  return lines.join("\n");
}

function fmt(label: string, n: number): string {
  if (!Number.isFinite(n)) return "–";
  if (label.startsWith("GitHub") || label.startsWith("peak")) return n.toFixed(label.startsWith("GitHub") ? 2 : 1);
  return ms(n);
}
