// lib/metrics: the files node_exporter reads, parsed back with an independent
// parser (the official Python client's), across "processes" (two opens on
// one state dir), and the failure modes that must never break a cycle.
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { createLogger } from "../lib/core/log.ts";
import { render, SlotMetrics } from "../lib/host/metrics/index.ts";
import { METRICS, SLOT_PHASES, type FailureReason } from "../lib/host/metrics/definitions.ts";
import { parseExposition, sample, samples } from "./helpers/exposition.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: { metrics?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), "metrics-test-"));
  dirs.push(root);
  const stateDir = join(root, "state");
  const textfileDir = join(root, "textfile");
  const config = { host: { stateDir, id: "mac-01" } as never, ...(opts.metrics === false ? {} : { metrics: { textfileDir } }) };
  let t = Date.parse("2026-10-01T10:00:00Z");
  const clock = { now: () => t, advance: (s: number) => (t += s * 1000) };
  const out = new PassThrough();
  let logText = "";
  out.on("data", (d) => (logText += d));
  const log = createLogger({ stream: out, format: "json" });
  const open = (slot = 1) => SlotMetrics.open({ config, slot, log, now: clock.now });
  const prom = (slot = 1) => readFileSync(join(textfileDir, `macos_runner_slot_${slot}.prom`), "utf8");
  return { root, stateDir, textfileDir, clock, open, prom, logs: () => logText };
}

/** One served job, the way loop reports it. */
function cycle(m: SlotMetrics, clock: { advance(s: number): void }, result = "Succeeded") {
  m.phase("clone");
  m.observe("token", 0.3);
  m.observe("clone", 2);
  m.phase("boot");
  m.observe("boot_to_ip", 7);
  m.observe("boot_to_ssh", 9);
  m.phase("run");
  clock.advance(1.5);
  m.runnerListening();
  clock.advance(20);
  m.jobStarted();
  clock.advance(125);
  m.jobCompleted(result);
  m.phase("cleanup");
  m.observe("cleanup", 1.2);
  m.backoff(undefined, 0);
  m.phase("done");
}

describe("SlotMetrics", () => {
  test("one cycle: every family typed and labelled, buckets and values as observed, file 0644 and nothing else left", () => {
    const w = setup();
    const m = w.open();
    cycle(m, w.clock);
    m.info({ image_digest: `sha256:${"a".repeat(64)}`, runner_version: "2.336.0", path: "cold", pinned_at: "2026-09-20T00:00:00Z" });
    m.flush();

    const text = w.prom();
    const families = parseExposition(text);
    const byName = new Map(families.map((f) => [f.name, f]));
    expect(byName.get("macos_runner_phase_duration_seconds")?.type).toBe("histogram");
    expect(byName.get("gha_started_jobs")?.type).toBe("counter"); // the parser drops _total from counter families
    expect(byName.get("gha_busy_runners")?.type).toBe("gauge");
    for (const f of families) {
      expect(f.help.length).toBeGreaterThan(10);
      for (const s of f.samples) expect(s.labels).toMatchObject({ host: "mac-01", slot: "1" });
    }

    const all = samples(text);
    const step = (phase: string, le: string) => sample(all, "macos_runner_phase_duration_seconds_bucket", { phase, le });
    expect([step("clone", "1"), step("clone", "2"), step("clone", "+Inf")]).toEqual([0, 1, 1]);
    expect(sample(all, "macos_runner_phase_duration_seconds_sum", { phase: "boot_to_ip" })).toBe(7);
    expect(sample(all, "macos_runner_phase_duration_seconds_count", { phase: "token" })).toBe(1);
    // runner_to_listening is measured from phase("run") to runnerListening(): 1.5 s.
    expect(sample(all, "macos_runner_phase_duration_seconds_sum", { phase: "runner_to_listening" })).toBe(1.5);
    expect([step("runner_to_listening", "1"), step("runner_to_listening", "2")]).toEqual([0, 1]);
    expect(sample(all, "macos_runner_job_wait_seconds_sum")).toBe(20);
    expect(sample(all, "macos_runner_job_wait_seconds_bucket", { le: "10" })).toBe(0);
    expect(sample(all, "macos_runner_job_wait_seconds_bucket", { le: "30" })).toBe(1);
    expect(sample(all, "gha_job_execution_duration_seconds_bucket", { job_result: "Succeeded", le: "120" })).toBe(0);
    expect(sample(all, "gha_job_execution_duration_seconds_bucket", { job_result: "Succeeded", le: "150" })).toBe(1);
    expect(sample(all, "gha_started_jobs_total")).toBe(1);
    expect(sample(all, "gha_completed_jobs_total", { job_result: "Succeeded" })).toBe(1);
    expect(sample(all, "macos_runner_last_success_timestamp_seconds")).toBe(Date.parse("2026-10-01T10:02:26.5Z") / 1000);
    // No turnaround yet: no job had finished before this runner listened.
    expect(all.some((s) => s.name.startsWith("macos_runner_turnaround_seconds"))).toBe(false);
    // Current phase, one-hot over every phase.
    for (const p of SLOT_PHASES) expect(sample(all, "macos_runner_slot_phase", { phase: p })).toBe(p === "done" ? 1 : 0);
    expect([sample(all, "gha_busy_runners"), sample(all, "gha_idle_runners")]).toEqual([0, 0]);
    expect(sample(all, "macos_runner_image_info", { image_digest: `sha256:${"a".repeat(64)}`, path: "cold" })).toBe(1);
    expect(sample(all, "macos_runner_runner_version_info", { runner_version: "2.336.0" })).toBe(1);
    expect(sample(all, "macos_runner_image_pinned_timestamp_seconds")).toBe(Date.parse("2026-09-20T00:00:00Z") / 1000);
    expect(sample(all, "macos_runner_consecutive_failures")).toBe(0);

    expect(statSync(join(w.textfileDir, "macos_runner_slot_1.prom")).mode & 0o777).toBe(0o644);
    expect(readdirSync(w.textfileDir)).toEqual(["macos_runner_slot_1.prom"]);
    expect(readdirSync(w.stateDir)).toEqual(["metrics-slot-1.json"]);
    expect(statSync(join(w.stateDir, "metrics-slot-1.json")).mode & 0o777).toBe(0o600);
    // Every family the code defines is declared with the type the definitions give.
    for (const [name, def] of Object.entries(METRICS)) {
      const f = byName.get(def.type === "counter" ? name.replace(/_total$/, "") : name);
      if (f) expect(f.type).toBe(def.type);
    }
  });

  test("busy and idle follow the runner: idle while listening, busy during the job", () => {
    const w = setup();
    const m = w.open();
    m.phase("run");
    m.runnerListening();
    let all = samples(w.prom());
    expect([sample(all, "gha_idle_runners"), sample(all, "gha_busy_runners"), sample(all, "macos_runner_slot_phase", { phase: "run" })]).toEqual([1, 0, 1]);
    m.jobStarted();
    all = samples(w.prom());
    expect([sample(all, "gha_idle_runners"), sample(all, "gha_busy_runners"), sample(all, "macos_runner_slot_phase", { phase: "job" })]).toEqual([0, 1, 1]);
    expect(sample(all, "macos_runner_phase_started_timestamp_seconds")).toBe(w.clock.now() / 1000);
  });

  test("a retired idle runner replaced in its VM: counted, not idle while replaced, its start-up timed, the count kept across processes", () => {
    const w = setup();
    const m = w.open();
    m.phase("run");
    m.runnerListening();
    // GitHub retired it; the cycle makes a new runner in the same VM, as the cycle reports it.
    m.phase("token");
    expect(sample(samples(w.prom()), "gha_idle_runners")).toBe(0);
    m.runnerReplaced();
    m.phase("run");
    w.clock.advance(2);
    m.runnerListening();
    const all = samples(w.prom());
    expect(sample(all, "macos_runner_runners_replaced_total")).toBe(1);
    expect(sample(all, "gha_idle_runners")).toBe(1);
    expect(sample(all, "macos_runner_phase_duration_seconds_count", { phase: "runner_to_listening" })).toBe(2);
    expect(sample(all, "macos_runner_phase_duration_seconds_sum", { phase: "runner_to_listening" })).toBe(2);
    w.open().runnerReplaced();
    expect(sample(samples(w.prom()), "macos_runner_runners_replaced_total")).toBe(2);
  });

  test("two processes on one state dir: counters and buckets add up, turnaround spans the processes", () => {
    const w = setup();
    const first = w.open();
    cycle(first, w.clock);
    first.flush();

    w.clock.advance(3); // the process exits, launchd starts the next one
    const second = w.open();
    second.phase("clone");
    w.clock.advance(9);
    second.phase("run");
    w.clock.advance(2);
    second.runnerListening(); // 14 s after the first job finished
    second.jobStarted();
    w.clock.advance(40);
    second.jobCompleted("Failed");
    second.phase("done");

    const all = samples(w.prom());
    expect(sample(all, "gha_started_jobs_total")).toBe(2);
    expect(sample(all, "gha_completed_jobs_total", { job_result: "Succeeded" })).toBe(1);
    expect(sample(all, "gha_completed_jobs_total", { job_result: "Failed" })).toBe(1);
    expect(sample(all, "macos_runner_turnaround_seconds_count")).toBe(1);
    expect(sample(all, "macos_runner_turnaround_seconds_sum")).toBe(14);
    expect(sample(all, "macos_runner_turnaround_seconds_bucket", { le: "10" })).toBe(0);
    expect(sample(all, "macos_runner_turnaround_seconds_bucket", { le: "15" })).toBe(1);
    expect(sample(all, "macos_runner_phase_duration_seconds_count", { phase: "runner_to_listening" })).toBe(2);
    expect(sample(all, "macos_runner_phase_duration_seconds_count", { phase: "clone" })).toBe(1);
    // The last success stays the first job's; the last job is the failed one.
    expect(sample(all, "macos_runner_last_success_timestamp_seconds")).toBe(Date.parse("2026-10-01T10:02:26.5Z") / 1000);
    expect(sample(all, "macos_runner_last_job_timestamp_seconds")).toBe(w.clock.now() / 1000);

    // A third process sees the same totals without adding anything.
    w.open().flush();
    expect(sample(samples(w.prom()), "gha_started_jobs_total")).toBe(2);
  });

  test("failures, lost jobs, ghosts and backoff; unknown labels are folded into fixed values", () => {
    const w = setup();
    const m = w.open();
    m.failure("boot", "no_ip");
    m.failure("boot", "no_ip");
    m.failure("token", "github_auth");
    m.failure("nonsense" as never, "something new" as FailureReason);
    m.phase("run");
    m.runnerListening();
    m.jobStarted();
    m.lostJob();
    m.jobCompleted('Weird "result"\nx');
    m.ghosts(3);
    const until = new Date(w.clock.now() + 40_000);
    m.backoff(until, 2);
    m.info({ image_digest: "latest", runner_version: "2.336.0; rm -rf", path: "snapshot" });
    m.phase("backoff");

    const all = samples(w.prom());
    expect(sample(all, "macos_runner_failures_total", { phase: "boot", reason: "no_ip" })).toBe(2);
    expect(sample(all, "macos_runner_failures_total", { phase: "token", reason: "github_auth" })).toBe(1);
    expect(sample(all, "macos_runner_failures_total", { phase: "failed", reason: "other" })).toBe(1);
    expect(sample(all, "macos_runner_lost_jobs_total")).toBe(1);
    expect(sample(all, "gha_completed_jobs_total", { job_result: "Unknown" })).toBe(1);
    // A lost job has no execution time to report.
    expect(all.some((s) => s.name.startsWith("gha_job_execution_duration_seconds"))).toBe(false);
    expect(sample(all, "macos_runner_ghost_runners")).toBe(3);
    expect(sample(all, "macos_runner_consecutive_failures")).toBe(2);
    expect(sample(all, "macos_runner_backoff_until_timestamp_seconds")).toBe(until.getTime() / 1000);
    expect(sample(all, "macos_runner_image_info", { image_digest: "unknown", path: "snapshot" })).toBe(1);
    expect(all.some((s) => s.name === "macos_runner_runner_version_info")).toBe(false);
    expect(sample(all, "macos_runner_slot_phase", { phase: "backoff" })).toBe(1);
  });

  test("no metrics section: no files and no cost", () => {
    const w = setup({ metrics: false });
    const m = w.open();
    expect(m.enabled).toBe(false);
    cycle(m, w.clock);
    m.flush();
    expect(existsSync(w.stateDir)).toBe(false);
    expect(existsSync(w.textfileDir)).toBe(false);
  });

  test("an unwritable textfile dir never throws: one warning, and the next write after the fix succeeds", () => {
    const w = setup();
    writeFileSync(w.textfileDir, "a file where the directory should be");
    const m = w.open();
    expect(() => cycle(m, w.clock)).not.toThrow();
    const warnings = w.logs().split("\n").filter((l) => l.includes("metrics.write_failed"));
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toContain(w.textfileDir);
    expect(readdirSync(w.stateDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    rmSync(w.textfileDir);
    m.phase("done");
    expect(sample(samples(w.prom()), "gha_started_jobs_total")).toBe(1);
  });

  test("a damaged state file starts afresh with a warning; a stale entry is dropped alone", () => {
    const w = setup();
    const m = w.open();
    cycle(m, w.clock);
    const statePath = join(w.stateDir, "metrics-slot-1.json");
    const saved = JSON.parse(readFileSync(statePath, "utf8"));
    // Other buckets (an older release) for one histogram, a metric that no longer exists.
    saved.series.macos_runner_job_wait_seconds['[]'].le = [1, 2, 3];
    saved.series.macos_runner_gone_total = { "[]": 4 };
    writeFileSync(statePath, JSON.stringify(saved));
    w.open().flush();
    let all = samples(w.prom());
    expect(sample(all, "gha_started_jobs_total")).toBe(1);
    expect(all.some((s) => s.name.startsWith("macos_runner_job_wait_seconds"))).toBe(false);
    expect(w.logs()).toContain("macos_runner_job_wait_seconds[]");

    writeFileSync(statePath, "{ not json");
    const fresh = w.open();
    fresh.phase("idle");
    all = samples(w.prom());
    expect(all.some((s) => s.name === "gha_started_jobs_total")).toBe(false);
    expect(w.logs()).toContain("starting the series afresh");
  });
});

describe("exposition", () => {
  test("label values and help text with quotes, backslashes and newlines survive a real parser", () => {
    const odd = 'a "quoted" \\ back\nslash';
    const text = render([
      { name: "x_total", help: "help with \\ and\nnewline", type: "counter", samples: [{ labels: { v: odd }, value: 3 }] },
      { name: "y_seconds", help: "h", type: "histogram", samples: [{ labels: { v: odd }, le: [0.5, 1], counts: [1, 2], sum: 1.25, count: 3 }] },
      { name: "empty", help: "no samples: left out", type: "gauge", samples: [] },
    ]);
    const families = parseExposition(text);
    expect(families.map((f) => f.name)).toEqual(["x", "y_seconds"]);
    expect(families[0]!.help).toBe("help with \\ and\nnewline");
    const all = families.flatMap((f) => f.samples);
    expect(sample(all, "x_total", { v: odd })).toBe(3);
    expect(sample(all, "y_seconds_bucket", { v: odd, le: "0.5" })).toBe(1);
    expect(sample(all, "y_seconds_bucket", { v: odd, le: "+Inf" })).toBe(3);
    expect(sample(all, "y_seconds_count", { v: odd })).toBe(3);
  });

  test("bad names are refused", () => {
    expect(() => render([{ name: "bad-name", help: "h", type: "gauge", samples: [{ labels: {}, value: 1 }] }])).toThrow(/invalid metric name/);
    expect(() => render([{ name: "ok", help: "h", type: "gauge", samples: [{ labels: { "bad-label": "x" }, value: 1 }] }])).toThrow(/invalid label name/);
  });
});
