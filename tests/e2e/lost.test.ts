// A job lost to a power loss (host reboot, VM crash with its loop): the next
// start of the slot finds the runner still busy on GitHub and its VM gone,
// and says so as a lost job, not only as a ghost runner to delete later. A
// job GitHub assigned in the instant the VM died, which the runner never
// announced, is in tests/cycle/lost.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { markedProcesses } from "../../sim/tart/guest/processes.ts";
import { runState } from "../../sim/tart/running.ts";
import type { World } from "../../sim/world.ts";
import { sample, samples } from "../helpers/exposition.ts";
import type { LogLine } from "../../sim/logs.ts";
import { enqueue, events, fileWorld, job, loopBinary, loopInProcess, slots, slotState, until, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  // GitHub gives up on a vanished runner after seconds here (its session lease, then its busy time), not minutes.
  world = await fileWorld({ github: { sessionLeaseMs: 4000, lostRunnerBusyMs: 1000 } });
});
afterAll(() => world?.stop());

/**
 * Runs a long job on the compiled loop, then cuts the power: the loop, the VM
 * and its guest die at once. Returns the slot's state as the job ran, and the job's id.
 */
async function powerLossMidJob(s: Slots, name: string): Promise<{ st: Record<string, unknown>; jobId: number }> {
  const j = await enqueue(s, name, "sleep 30");
  const first = loopBinary(s);
  const st = await until("the job running", () => {
    const v = slotState(s);
    return v?.phase === "job" ? v : undefined;
  }, 30_000);
  const vmDir = join(s.host.tartHome, "vms", st.vm as string);
  first.child.kill("SIGKILL");
  process.kill(runState(vmDir)!.pid, "SIGKILL");
  for (const p of markedProcesses((v) => v === vmDir)) process.kill(p.pid, "SIGKILL");
  await first.done;
  return { st, jobId: j.id };
}

/** The next start of the slot, in-process, for as long as `check` runs; then stopped. */
async function nextStart(s: Slots, check: (lines: LogLine[]) => Promise<void>): Promise<void> {
  const next = loopInProcess(s);
  try {
    await check(next.lines);
  } finally {
    next.stop.request();
    await next.done;
  }
}

test.concurrent("power loss mid-job: the next start reports the job as lost (job.lost, lost-jobs metric) and keeps its busy runner as a ghost", async () => {
  const textfileDir = join(world.dir, "lost-textfile");
  const s = slots(world, { metrics: { textfile_dir: textfileDir } }, { boot_ms: 150 });
  const { st } = await powerLossMidJob(s, "long-build");
  await nextStart(s, async (lines) => {
    const lost = await until("job.lost in the next start's log", () => events(lines, "job.lost")[0], 20_000);
    expect(lost.level).toBe("error");
    expect(lost.job).toBe("long-build");
    expect(lost.runner).toBe(st.runner_name as string);
    expect(lost.msg).toContain("re-run it");
    const ghosts = await until("the busy runner kept as a ghost", () => {
      const ids = ((slotState(s)?.ghosts ?? []) as { id: number }[]).map((g) => g.id);
      return ids.length > 0 ? ids : undefined;
    });
    expect(ghosts).toEqual([st.runner_id as number]);
  });
  expect(sample(samples(readFileSync(join(textfileDir, "macos_runner_slot_1.prom"), "utf8")), "macos_runner_lost_jobs_total")).toBe(1);
}, 60_000);

test.concurrent("power loss mid-job, and the slot back only after GitHub failed the job: the next start still reports it lost, by name", async () => {
  const s = slots(world, {}, { boot_ms: 150 });
  const { st, jobId } = await powerLossMidJob(s, "build-during-the-outage");
  // The host is down longer than GitHub waits: the runner no longer reads busy when the slot is back.
  await until("GitHub failed the job", async () => (await job(s, jobId)).result === "Failed", 20_000);
  await nextStart(s, async (lines) => {
    const lost = await until("job.lost in the next start's log", () => events(lines, "job.lost")[0], 20_000);
    expect([lost.level, lost.job, lost.runner, lost.vm]).toEqual(["error", "build-during-the-outage", st.runner_name, st.vm]);
    expect(events(lines, "recover.runner_removed")).toHaveLength(1);
  });
}, 60_000);

test.concurrent("a lost job is reported once: after a start that reported it and was killed before its cleanup, the next start does not report it again", async () => {
  const s = slots(world, {}, { boot_ms: 150 });
  await powerLossMidJob(s, "reported-once");
  // As a start that reported the job and was killed before its cleanup leaves the state.
  writeFileSync(join(s.stateDir, "slot-1.json"), JSON.stringify({ ...slotState(s), phase: "recover", job_result: "Lost" }));
  await nextStart(s, async (lines) => {
    await until("the busy runner kept as a ghost", () => ((slotState(s)?.ghosts ?? []) as unknown[]).length > 0, 20_000);
    expect(events(lines, "job.lost")).toEqual([]);
  });
}, 60_000);
