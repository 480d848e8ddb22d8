// End to end: the compiled `loop` writes the slot's metrics file as it runs
// real cycles against the simulated world; the file is parsed with the
// official Python client's parser.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, loop } from "./helpers/e2e.ts";
import { sample, samples } from "./helpers/exposition.ts";

let world: World;

beforeAll(async () => {
  ensureBinaries(["loop"]);
  world = await startWorld({ registry: "required", tart: { boot_ms: 150 } });
});

afterAll(async () => {
  await world?.stop();
});

test("two cycles of the compiled loop: jobs, step histograms, turnaround across the two processes, image digest", async () => {
  const textfileDir = join(world.dir, "textfile");
  const config = world.writeConfig({ metrics: { textfile_dir: textfileDir } });
  await world.gh.enqueueJob({ name: "metrics-1", script: "echo one" });
  await world.gh.enqueueJob({ name: "metrics-2", script: "exit 3" });

  const first = await loop(world, config);
  expect(first.code).toBe(0);
  const second = await loop(world, config);
  expect(second.code).toBe(0);

  const prom = join(textfileDir, "macos_runner_slot_1.prom");
  expect(statSync(prom).mode & 0o777).toBe(0o644);
  const all = samples(readFileSync(prom, "utf8"));
  // The host label is the host id the slot pinned, not the hostname (Macs imaged alike share one).
  const hostId = readFileSync(join(world.dir, "state", "host-id"), "utf8").trim();
  expect(hostId).not.toBe(hostname().split(".")[0]!.toLowerCase());
  expect([...new Set(all.map((s) => s.labels.host))]).toEqual([hostId]);
  expect(sample(all, "gha_started_jobs_total", { slot: "1" })).toBe(2);
  expect(sample(all, "gha_completed_jobs_total", { job_result: "Succeeded" })).toBe(1);
  expect(sample(all, "gha_completed_jobs_total", { job_result: "Failed" })).toBe(1);
  expect(sample(all, "gha_job_execution_duration_seconds_count", { job_result: "Failed" })).toBe(1);
  // Three clones: the first cycle's own, and the next VM cloned while each job ran.
  expect(sample(all, "macos_runner_phase_duration_seconds_count", { phase: "clone" })).toBe(3);
  for (const phase of ["token", "boot_to_ip", "boot_to_ssh", "runner_to_listening", "cleanup"]) {
    expect(sample(all, "macos_runner_phase_duration_seconds_count", { phase })).toBe(2);
  }
  // Boot to IP comes before boot to SSH, and the sim's VM takes at least its 150 ms to boot.
  const ip = sample(all, "macos_runner_phase_duration_seconds_sum", { phase: "boot_to_ip" });
  expect(ip).toBeGreaterThanOrEqual(0.3);
  expect(sample(all, "macos_runner_phase_duration_seconds_sum", { phase: "boot_to_ssh" })).toBeGreaterThanOrEqual(ip);
  // Job 1 finished in the first process, the next runner listened in the second.
  expect(sample(all, "macos_runner_turnaround_seconds_count")).toBe(1);
  expect(sample(all, "macos_runner_turnaround_seconds_sum")).toBeGreaterThan(0.15);
  expect(sample(all, "macos_runner_job_wait_seconds_count")).toBe(2);
  expect(sample(all, "macos_runner_slot_phase", { phase: "done" })).toBe(1);
  expect(sample(all, "macos_runner_consecutive_failures")).toBe(0);
  expect(all.some((s) => s.name === "macos_runner_lost_jobs_total")).toBe(false);
  // The image the loop cloned, by the digest tart cached for the tag.
  const info = all.filter((s) => s.name === "macos_runner_image_info");
  expect(info.length).toBe(1);
  expect(info[0]!.labels.image_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(sample(all, "macos_runner_last_success_timestamp_seconds")).toBeLessThanOrEqual(Date.now() / 1000);
}, 90_000);
