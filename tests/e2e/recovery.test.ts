// Recovery from a killed loop: what the compiled loop, SIGKILLed mid-phase,
// left (its VM, its runner, its state file as written up to the kill) is
// found and removed at the next start, runner first; a job still running
// healthy is waited for. Crashed VMs, ghosts, lost or garbled state files and
// sweeps are in tests/cycle/recovery.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LogLine } from "../../sim/logs.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, gate, github, job, logText, loopBinary, loopInProcess, slots, slotState, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** Starts the compiled loop, waits for `phase` (for "run": the runner listening), and SIGKILLs it there: the VM and the runner stay. */
async function killIn(s: Slots, phase: string): Promise<{ vm: string; runnerId: number | undefined }> {
  const first = loopBinary(s);
  const st = await until(`phase ${phase}`, () => {
    const st = slotState(s);
    return st?.phase === phase && st;
  }, 30_000, 20);
  if (phase === "run") {
    let exited = false;
    void first.done.then(() => (exited = true));
    const log = () => logText(first.lines());
    await until("the runner listening", () => exited || events(first.lines(), "run.ready").length > 0, 30_000, 20).catch((e: Error) => {
      throw new Error(`${e.message}; the loop's log:\n${log()}`);
    });
    if (exited) throw new Error(`the loop exited before its runner listened; its log:\n${log()}`);
  }
  first.child.kill("SIGKILL");
  await first.done;
  return { vm: st.vm as string, runnerId: st.runner_id as number | undefined };
}

/**
 * Runs the loop in-process until `jobs` are done (by its runner, or by a
 * predecessor's it waited for) and then either its own runner listens with
 * housekeeping done (it is stopped there) or its one cycle ended (its own
 * runner took the last job); returns its log. `watch` sees the log at each look.
 */
async function serveThenStop(s: Slots, jobs: number[], watch: (lines: LogLine[]) => void = () => {}) {
  const run = loopInProcess(s);
  let ended = false;
  void run.done.then(() => (ended = true));
  await until("the jobs done and a runner listening (or the cycle over)", async () => {
    watch(run.lines);
    for (const id of jobs) if ((await job(s, id)).status !== "completed") return false;
    return ended || events(run.lines, "run.ready").length > events(run.lines, "cycle.done").length;
  }, 45_000, 50).catch((e) => {
    console.error(`its log:\n${logText(run.lines)}`);
    throw e;
  });
  run.stop.request();
  return exitOf(run, 0);
}

// The longest test first: it runs while the others do, not after them.
describe("a killed loop", () => {
  test.concurrent("killed while booting: the next start deletes the runner before stopping the VM, then serves the job", async () => {
    const s = slots(world, {}, { boot_ms: 3000 });
    const { vm } = await killIn(s, "boot");
    expect(vms(s).map((v) => v.name)).toContain(vm);
    s.host.setTart({ boot_ms: 150 });
    const j = await enqueue(s, "after-crash");
    const lines = await exitOf(loopBinary(s), 0);
    expect(events(lines, "recover.start")[0]?.vm).toBe(vm);
    const order = lines.map((l) => l.event).filter((e) => e === "recover.runner_removed" || e === "cleanup.vm");
    if (order.includes("recover.runner_removed")) expect(order.indexOf("recover.runner_removed")).toBeLessThan(order.indexOf("cleanup.vm"));
    expect((await job(s, j.id)).result).toBe("Succeeded");
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
  }, 60_000);

  test.concurrent("killed with an idle runner and a job queued just after: the orphan gets no job or its job is waited for; nothing lost", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const { vm } = await killIn(s, "run");
    const j = await enqueue(s, "queued-after-the-crash", "sleep 1; echo done");
    await serveThenStop(s, [j.id]);
    expect((await job(s, j.id)).result).toBe("Succeeded");
    // Stopped while listening, the slot deleted its VMs; if its own runner took the job, the healthy cycle started the next one.
    const next = (slotState(s)?.next_vm as { name: string } | undefined)?.name;
    expect(vms(s).filter((v) => v.running && v.name !== next)).toEqual([]);
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
  }, 60_000);

  test.concurrent("killed during a job: the next start finds the job running on its VM and waits for it; it succeeds once", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    // The job runs until the next start has found it running.
    const hold = gate(s, "long-build");
    const j = await enqueue(s, "long-build", hold.script("echo built"));
    const { vm } = await killIn(s, "job");
    const lines = await serveThenStop(s, [j.id], (log) => {
      if (events(log, "recover.adopt").length > 0) hold.open();
    });
    expect(events(lines, "recover.adopt")[0]?.vm).toBe(vm);
    const done = await job(s, j.id);
    expect([done.result, done.runner_name]).toEqual(["Succeeded", vm]);
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
    expect((await github(s)).runners.filter((r) => r.name === vm)).toEqual([]);
  }, 60_000);
});

describe("names", () => {
  test.concurrent("the host id is pinned: leftovers named before a hostname change are still this slot's", async () => {
    const s = slots(world, {}, { boot_ms: 3000 });
    writeFileSync(join(s.stateDir, "host-id"), "old-mac-name\n");
    const { vm } = await killIn(s, "boot");
    expect(vm).toContain("-old-mac-name-1-");
    s.host.setTart({ boot_ms: 150 });
    const lines = await serveThenStop(s, []);
    expect(events(lines, "recover.start")[0]?.vm).toBe(vm);
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
  }, 60_000);
});
