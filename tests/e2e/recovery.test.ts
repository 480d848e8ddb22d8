// Recovery: what a killed, crashed or forgetful predecessor left is found and
// removed at the next start, runner first; a job still running healthy is
// waited for; a busy ghost never holds the slot; neighbours are never touched.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { createGitHubClient } from "../../lib/github/client.ts";
import { generateJitConfig } from "../../lib/github/runners.ts";
import { createLogger } from "../../lib/core/log.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, github, job, logText, loopBinary, loopInProcess, nothingLeft, slots, slotState, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  // Vanished runners stay busy for seconds here, not GitHub's minutes, so the ghost's end can be seen.
  // The session lease stays the sim's 10 s: it also ends a live runner's session if this process's event loop stalls past it.
  world = await fileWorld({ github: { lostRunnerBusyMs: 4000 } });
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
 * runner took the last job); returns its log.
 */
async function serveThenStop(s: Slots, jobs: number[]) {
  const run = loopInProcess(s);
  let ended = false;
  void run.done.then(() => (ended = true));
  await until("the jobs done and a runner listening (or the cycle over)", async () => {
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
describe("ghost runners", () => {
  test.concurrent("a VM that dies mid-job: the job is reported lost, its busy runner becomes a ghost, the slot serves the next job, the ghost is deleted later", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const lost = await enqueue(s, "dies-with-its-vm", "sleep 30");
    const first = loopInProcess(s);
    await until("the job running", async () => (await job(s, lost.id)).status === "in_progress");
    // The VM dies the way a crashed VM does: its `tart run` process is gone.
    const vm = slotState(s)!.vm as string;
    spawnSync("pkill", ["-KILL", "-f", `run --no-graphics ${vm}$`]);
    const lines = await exitOf(first, 82);
    const report = events(lines, "job.lost")[0]!;
    expect(report.level).toBe("error");
    expect([report.job, report.vm, report.runner]).toEqual(["dies-with-its-vm", vm, vm]);
    expect(slotState(s)!.ghosts).toMatchObject([{ name: vm }]);

    const next = await enqueue(s, "served-while-the-ghost-is-busy");
    await exitOf(loopInProcess(s), 0);
    expect((await job(s, next.id)).result).toBe("Succeeded");
    // GitHub fails the lost job once it gives up on the vanished runner; it is never re-queued.
    await until("the lost job failed", async () => (await job(s, lost.id)).result === "Failed", 30_000);
    expect((await job(s, lost.id)).attempts).toBe(1);
    // Later cycles retry the ghost (at most once per host.backoff_max) until GitHub lets it go.
    await until("the ghost deleted by a later cycle", async () => {
      await serveThenStop(s, []);
      return (slotState(s)!.ghosts as unknown[]).length === 0;
    }, 30_000, 0);
    expect((await github(s)).runners.map((r) => r.name)).not.toContain(vm);
    await nothingLeft(s);
  }, 90_000);
});

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
    const j = await enqueue(s, "long-build", "sleep 3; echo built");
    const { vm } = await killIn(s, "job");
    const lines = await serveThenStop(s, [j.id]);
    expect(events(lines, "recover.adopt")[0]?.vm).toBe(vm);
    const done = await job(s, j.id);
    expect([done.result, done.runner_name]).toEqual(["Succeeded", vm]);
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
    expect((await github(s)).runners.filter((r) => r.name === vm)).toEqual([]);
  }, 60_000);
});

describe("a state file that forgot", () => {
  const variants: [string, (path: string, vm: string) => void][] = [
    ["deleted", (p) => rmSync(p)],
    ["empty", (p) => writeFileSync(p, "")],
    ["garbage", (p) => writeFileSync(p, "{\u0000\u0001 not json")],
    ["wrongly typed", (p) => writeFileSync(p, JSON.stringify({ phase: 7, failures: "many", vm: 42, ghosts: "none" }))],
    ["stale (an older cycle's)", (p, vm) => writeFileSync(p, JSON.stringify({ version: 1, slot: 1, phase: "done", vm: vm.replace(/[0-9a-f]{6}$/, "000000"), failures: 0 }))],
  ];
  for (const [what, damage] of variants) {
    test.concurrent(`${what}, with a running VM and a registered runner left behind: both found and removed; neighbours untouched`, async () => {
      const s = slots(world, {}, { boot_ms: 150 });
      const { vm } = await killIn(s, "run");
      damage(join(s.stateDir, "slot-1.json"), vm);
      // Neighbours on the same host and org: slot 2, and a prefix that merely starts like ours.
      const others = [await neighbour(s, 2, s.prefix), await neighbour(s, 1, `${s.prefix}2`)];
      const j = await enqueue(s, "served-after-the-forgetting");
      await serveThenStop(s, [j.id]);
      expect((await job(s, j.id)).result).toBe("Succeeded");
      expect(vms(s).map((v) => v.name)).not.toContain(vm);
      const runners = (await s.world.gh.state()).runners.map((r) => r.name);
      expect(runners).not.toContain(vm);
      for (const o of others) {
        expect(runners).toContain(o);
        expect(vms(s).map((v) => v.name).concat(listAll(s))).toContain(o);
      }
    }, 60_000);
  }
});

describe("a sweep that failed", () => {
  test.concurrent("a lost state's sweep cut short by GitHub is made by the next start, before anything new", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const { vm } = await killIn(s, "run");
    rmSync(join(s.stateDir, "slot-1.json"));
    // The sweep's runner listing fails every retry: the start fails having written a fresh, valid state.
    await s.world.gh.fault({ method: "GET", path: `/orgs/${s.org}/actions/runners`, status: 503, count: 4 });
    const failed = await loopBinary(s).done;
    expect(failed.code).not.toBe(0);
    expect(events(failed.lines, "cycle.failed").map((l) => l.msg).join("\n")).toMatch(/listing runners/);
    expect(vms(s).map((v) => v.name)).toContain(vm);
    // The next start cannot clone (so no cycle of its own reaches housekeeping): only its recovery can remove what the lost state named.
    s.host.setTart({ faults: [{ kind: "clone_disk_full" }] });
    const next = await loopBinary(s).done;
    expect(next.code).not.toBe(0);
    expect(events(next.lines, "sweep.vm").map((l) => l.vm)).toContain(vm);
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
    expect((await github(s)).runners.map((r) => r.name)).not.toContain(vm);
    expect(slotState(s)?.sweep_pending).toBeUndefined();
  }, 60_000);
});

/** Every VM on the test's host, neighbours' included. */
function listAll(s: Slots): string[] {
  const r = spawnSync(s.config.host.tartPath, ["list", "--format", "json", "--source", "local"], { env: s.env, encoding: "utf8" });
  return (JSON.parse(r.stdout) as { Name: string }[]).map((v) => v.Name);
}

/** A neighbour's VM (cloned on the same host) and runner (same org): another slot, or a prefix that starts like ours. */
async function neighbour(s: Slots, slot: number, prefix: string): Promise<string> {
  const host = readFileSync(join(s.stateDir, "host-id"), "utf8").trim();
  const name = `${prefix}-${host}-${slot}-abcdef`;
  expect(spawnSync(s.config.host.tartPath, ["clone", s.config.image.ref, name, "--insecure"], { env: s.env }).status).toBe(0);
  const gh = createGitHubClient(s.config.github, { stateDir: join(s.stateDir, "..", `neighbour-${slot}`), log: createLogger({ stream: new PassThrough() }) });
  await generateJitConfig(gh, { name, group: "Default", labels: ["self-hosted"], workFolder: "_work" });
  return name;
}

describe("names", () => {
  test.concurrent("a state file naming another host's or prefix's VM: logged at error, forgotten, never touched", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const foreign = "someone-else-1-abcdef";
    writeFileSync(join(s.stateDir, "slot-1.json"), JSON.stringify({ version: 1, slot: 1, phase: "run", vm: foreign, runner_name: foreign, failures: 0 }));
    const j = await enqueue(s, "served-anyway");
    const lines = await exitOf(loopInProcess(s), 0);
    expect(events(lines, "state.foreign_name").map((l) => l.level)).toContain("error");
    expect((await job(s, j.id)).result).toBe("Succeeded");
  }, 30_000);

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
