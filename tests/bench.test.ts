// bench/: the figures come out of what the world recorded as bench/README.md
// defines them, and bench/baseline.sh is valid, shellcheck-clean bash.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { coveredMs, cycles, percentile, tartCpuMs, type TraceRecord } from "../bench/measure.ts";
import { arrivals, perIdleHour, timeFactor, type IdleFigures } from "../bench/idle.ts";
import { parseOptions } from "../bench/options.ts";
import type { SimEvent } from "../sim/github/types.ts";

const slotOf = (name: string) => Number(/^bl-h-(\d)-/.exec(name)?.[1]) || undefined;
const tart = (cmd: string, args: string[], started: number, ended: number, pid: number, cpuMs = 10, ppid = 1): TraceRecord =>
  ({ kind: "tart", cmd, args, pid, ppid, started_ms: started, at_ms: ended, cpu_us: cpuMs * 1000 });
const guest = (vm: string, event: "lease" | "ssh" | "agent" | "exec" | "tart-exec", at: number, command?: string): TraceRecord =>
  ({ kind: "guest", vm: `/t/vms/${vm}`, event, at_ms: at, ...(command && { command }) });
const RUNNER = "IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && exec ./run.sh";

describe("bench measurements", () => {
  test("covered time is the union of intervals, clipped", () => {
    expect(coveredMs([[0, 10], [5, 20], [30, 40]], 0, 100)).toBe(30);
    expect(coveredMs([[0, 10], [5, 20], [30, 40]], 8, 35)).toBe(17);
    expect(coveredMs([], 0, 10)).toBe(0);
  });

  test("turnaround, host overhead and readiness lag of one cycle", () => {
    // Job done at 1000; the old VM is stopped (tart, 1020-1050); the next VM's tart run starts at
    // 1100, its sshd answers at 3500; the runner's command arrives at 3560, it listens at 4000.
    // A delete of the old VM runs beside the boot and past sshd (3400-3600): not external.
    const events: SimEvent[] = [
      { at_ms: 1000, kind: "job-completed", runner: "bl-h-1-aaaaaa", job: 1 },
      { at_ms: 1200, kind: "session-opened", runner: "bl-h-2-cccccc" },
      { at_ms: 4000, kind: "session-opened", runner: "bl-h-1-bbbbbb" },
    ];
    const trace = [
      tart("stop", ["bl-h-1-aaaaaa", "--timeout", "0"], 1020, 1050, 11),
      tart("run", ["--no-graphics", "bl-h-1-bbbbbb"], 1100, 3500, 12),
      tart("delete", ["bl-h-1-aaaaaa"], 3400, 3600, 13),
      tart("clone", ["img", "bl-h-2-dddddd"], 1000, 1090, 14), // the other slot's: not this cycle's
      guest("bl-h-1-bbbbbb", "lease", 3100),
      guest("bl-h-1-bbbbbb", "ssh", 3500),
      guest("bl-h-1-bbbbbb", "exec", 3560, RUNNER),
    ];
    const [c, ...rest] = cycles(events, trace, slotOf);
    expect(rest).toEqual([]);
    // Ours: 1000-1020 and 1050-1100 before the boot (70 ms), 3500-3560 after sshd (60 ms).
    expect(c).toEqual({ slot: 1, runner: "bl-h-1-bbbbbb", turnaroundMs: 3000, hostOverheadMs: 130, readinessLagMs: 60, sshToListeningMs: 500 });
  });

  test("a runner started with tart exec: readiness is the guest agent answering, not sshd", () => {
    const events: SimEvent[] = [
      { at_ms: 1000, kind: "job-completed", runner: "bl-h-1-aaaaaa", job: 1 },
      { at_ms: 4200, kind: "session-opened", runner: "bl-h-1-bbbbbb" },
    ];
    const trace = [
      tart("run", ["--no-graphics", "bl-h-1-bbbbbb"], 1100, 3500, 12),
      guest("bl-h-1-bbbbbb", "lease", 3100),
      guest("bl-h-1-bbbbbb", "ssh", 3500),
      guest("bl-h-1-bbbbbb", "agent", 3700),
      guest("bl-h-1-bbbbbb", "tart-exec", 3790, RUNNER),
    ];
    const [c] = cycles(events, trace, slotOf);
    // Ours: 1000-1100 before the boot, 3700-3790 after the agent answered.
    expect(c).toEqual({ slot: 1, runner: "bl-h-1-bbbbbb", turnaroundMs: 3200, hostOverheadMs: 190, readinessLagMs: 90, sshToListeningMs: 500 });
  });

  test("CPU: only tart processes the contender waited for are subtracted", () => {
    const trace = [tart("stop", ["x"], 0, 1, 1, 20, 100), tart("run", ["y"], 0, 1, 2, 50, 1), tart("run", ["y"], 0, 1, 2, 70, 1), tart("clone", ["z"], 0, 1, 3, 30, 101)];
    expect(tartCpuMs(trace, new Set([100, 101]))).toBe(50);
    expect(tartCpuMs(trace, new Set([1]))).toBe(70); // the last record of a pid counts
  });

  test("percentiles are nearest-rank", () => {
    const xs = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(percentile(xs, 50)).toBe(10);
    expect(percentile(xs, 95)).toBe(19);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });

  test("options: defaults, and a bad value names the flag", () => {
    expect(parseOptions([])).toMatchObject({ scenario: "turnaround", profile: "scaled", scale: 1, cycles: 20, path: "cold", slots: 1, block: 4, jobMs: 1000 });
    expect(() => parseOptions(["--cycles", "5"])).toThrow("--cycles must be a whole number, at least 20, got '5'");
    expect(() => parseOptions(["--profile", "fast"])).not.toThrow();
    expect(() => parseOptions(["--path", "warm"])).toThrow("--path must be cold or snapshot");
    expect(() => parseOptions(["--slots", "3"])).toThrow("--slots must be 1 or 2");
  });
});

describe("the idle scenario", () => {
  test("arrivals: the same seed gives the same moments, each in its own part of the window, far apart", () => {
    const a = arrivals(6, 60_000, 1);
    expect(arrivals(6, 60_000, 1)).toEqual(a);
    expect(arrivals(6, 60_000, 2)).not.toEqual(a);
    for (const [i, at] of a.entries()) {
      expect(at).toBeGreaterThanOrEqual(i * 10_000 + 1_500);
      expect(at).toBeLessThanOrEqual(i * 10_000 + 8_500);
    }
    // At least 30% of a part between two jobs: here 3 s, with GitHub's 2 minutes in 60 minutes scaled to 2 s.
    for (let i = 1; i < a.length; i++) expect(a[i]! - a[i - 1]!).toBeGreaterThanOrEqual(3_000);
  });

  test("per idle hour: a job's own VM and runner do not count; retirements do", () => {
    const f = timeFactor({ profile: "scaled", scale: 0.25 });
    expect(f).toBeCloseTo((2_500 / 13_000) * 0.25, 6);
    const x: IdleFigures = { name: "loop", slots: 1, windowMs: 0, simHours: 2, boots: 8, jobs: 6, jobsSucceeded: 6, retirements: 40, apiCalls: 46, idleSlotHours: 2, pickupMs: [] };
    expect(perIdleHour(x)).toEqual({ boots: 1, calls: 20, callsPerRetirement: 1 });
    expect(perIdleHour({ ...x, retirements: 0 }).callsPerRetirement).toBeNaN();
  });

  test("options: --scenario idle runs four times faster by default; bad values name the flag", () => {
    expect(parseOptions(["--scenario", "idle"])).toMatchObject({ scenario: "idle", scale: 0.25, idleMinutes: 60, idleJobs: 6, seed: 1 });
    expect(parseOptions(["--scenario", "idle", "--scale", "0.5"]).scale).toBe(0.5);
    expect(() => parseOptions(["--scenario", "busy"])).toThrow("--scenario must be turnaround or idle");
    expect(() => parseOptions(["--scenario", "idle", "--idle-minutes", "5"])).toThrow("--idle-minutes must be at least 10");
  });
});

describe("bench/baseline.sh", () => {
  const script = join(import.meta.dir, "..", "bench", "baseline.sh");
  test("is valid bash", () => {
    const r = spawnSync("bash", ["-n", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
  const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;
  test.if(shellcheck)("is shellcheck-clean", () => {
    const r = spawnSync("shellcheck", [script], { encoding: "utf8" });
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });
});
