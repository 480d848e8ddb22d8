// Stopping the compiled loop with signals (launchd's bootout sends SIGTERM):
// one scenario per way in — SIGTERM lets a running job finish, SIGHUP takes
// an idle runner off GitHub before its VM is touched, a second signal cuts
// the job — and a hung `tart clone` process obeys a stop at once. What a
// drain does in each phase and race (the runner's DELETE against GitHub's
// dispatch, the cut job failing on GitHub) is in tests/cycle/drain.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { World } from "../../sim/world.ts";
import { count, enqueue, events, exitOf, fileWorld, gate, github, job, loopBinary, nothingLeft, slots, slotState, until, vms } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

// The longest test first: it runs beside the others, not after them.
describe("a second signal", () => {
  test.concurrent("cuts the job short: the loop exits 0 long before the job would end, no VM left running", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const j = await enqueue(s, "cut-short", "sleep 60");
    const run = loopBinary(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    run.child.kill("SIGTERM");
    await until("draining", () => events(run.lines(), "run.draining").length > 0);
    run.child.kill("SIGTERM");
    const lines = await exitOf(run, 0, 30_000);
    expect(events(lines, "run.done").map((l) => l.outcome)).toEqual(["stopped"]);
    expect((await job(s, j.id)).result).not.toBe("Succeeded");
    expect(vms(s).filter((v) => v.running)).toEqual([]);
  }, 60_000);
});

describe("a drain", () => {
  test.concurrent("SIGTERM during a job lets the job finish, then cleans up and exits 0", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const g = gate(s, "finish-me");
    const j = await enqueue(s, "finish-me", g.script("echo finished"));
    const run = loopBinary(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    run.child.kill("SIGTERM");
    // The drain has begun while the job runs; then the job ends.
    await until("draining", () => events(run.lines(), "run.draining").length > 0);
    g.open();
    const lines = await exitOf(run, 0);
    expect(events(lines, "run.draining").length).toBe(1);
    const done = await job(s, j.id);
    expect([done.result, done.output]).toEqual(["Succeeded", "finished\n"]);
    await nothingLeft(s);
  }, 60_000);

  test.concurrent("SIGHUP with an idle runner: the runner leaves GitHub before its VM stops; exit 0, nothing left", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const run = loopBinary(s);
    await until("listening", () => events(run.lines(), "run.ready").length > 0);
    run.child.kill("SIGHUP");
    const lines = await exitOf(run, 0);
    const order = lines.map((l) => l.event);
    expect(order.indexOf("run.stopping")).toBeGreaterThan(-1);
    expect(order.indexOf("run.stopping")).toBeLessThan(order.indexOf("cleanup.vm"));
    expect(count((await github(s)).calls, "DELETE")).toBe(1);
    await nothingLeft(s);
  }, 60_000);
});

describe("a stop in the clone", () => {
  test.concurrent("SIGTERM during a hung clone is obeyed at once: no VM, no runner", async () => {
    const s = slots(world, {}, { clone_ms: 120_000 });
    const run = loopBinary(s);
    await until("cloning", () => slotState(s)?.phase === "clone");
    const stopped = Date.now();
    run.child.kill("SIGTERM");
    await exitOf(run, 0);
    expect(Date.now() - stopped).toBeLessThan(10_000);
    expect(count((await github(s)).calls, "generate-jitconfig")).toBe(0);
    await nothingLeft(s);
  }, 60_000);
});
