// Stopping a slot (launchd's bootout sends SIGTERM): a running job finishes;
// an idle runner is taken off GitHub before its VM is touched, so no job is
// ever handed to a runner we are stopping; a second signal cuts the job; a
// stop is obeyed in every phase, a hung clone included.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { World } from "../../sim/world.ts";
import { count, enqueue, events, exitOf, fileWorld, github, job, loopBinary, nothingLeft, slots, slotState, until, vms } from "./harness.ts";

let world: World;
beforeAll(async () => {
  // A silent runner's session is dropped after the sim's 10 s and its job failed 3 s later (GitHub: minutes).
  // Not shorter: the lease also ends a live runner's session if this process's event loop stalls past it.
  world = await fileWorld({ github: { lostRunnerBusyMs: 3000 } });
});
afterAll(() => world?.stop());

// The longest test first: it runs beside the others, not after them.
describe("a second signal", () => {
  test.concurrent("cuts the job short: it fails (GitHub never re-queues it), the slot is left clean, exit 0", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const j = await enqueue(s, "cut-short", "sleep 60");
    const run = loopBinary(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    run.child.kill("SIGTERM");
    await until("draining", () => events(run.lines(), "run.draining").length > 0);
    run.child.kill("SIGTERM");
    await exitOf(run, 0);
    // GitHub fails it once the runner's session lease (10 s) and its busy time (3 s here) have passed.
    await until("the cut job failed", async () => (await job(s, j.id)).result === "Failed", 30_000);
    expect((await job(s, j.id)).attempts).toBe(1);
    expect(vms(s).filter((v) => v.running)).toEqual([]);
  }, 60_000);
});

describe("a drain", () => {
  test.concurrent("SIGTERM during a job lets the job finish, then cleans up and exits 0", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const j = await enqueue(s, "finish-me", "sleep 2; echo finished");
    const run = loopBinary(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    run.child.kill("SIGTERM");
    const lines = await exitOf(run, 0);
    expect(events(lines, "run.draining").length).toBe(1);
    const done = await job(s, j.id);
    expect([done.result, done.output]).toEqual(["Succeeded", "finished\n"]);
    await nothingLeft(s);
  }, 60_000);

  test.concurrent.each(["SIGTERM", "SIGHUP"] as const)("%s with an idle runner: the runner leaves GitHub before its VM stops; exit 0, nothing left", async (signal) => {
    const s = slots(world, {}, { boot_ms: 150 });
    const run = loopBinary(s);
    await until("listening", () => events(run.lines(), "run.ready").length > 0);
    run.child.kill(signal);
    const lines = await exitOf(run, 0);
    const order = lines.map((l) => l.event);
    expect(order.indexOf("run.stopping")).toBeGreaterThan(-1);
    expect(order.indexOf("run.stopping")).toBeLessThan(order.indexOf("cleanup.vm"));
    expect(count((await github(s)).calls, "DELETE")).toBe(1);
    await nothingLeft(s);
  }, 60_000);

  // A job queued at the moment of the stop, at several offsets around the runner's
  // first poll: it either runs on our runner to success (GitHub handed it over before
  // the DELETE: 422) or stays queued for another runner. It is never lost.
  test.concurrent.each([0, 25, 50, 75, 100])("a job queued %d ms before the stop is never lost", async (lead) => {
    const s = slots(world, {}, { boot_ms: 150 });
    const run = loopBinary(s);
    await until("listening", () => events(run.lines(), "run.ready").length > 0);
    const j = await enqueue(s, `last-moment-${lead}`, "echo ran");
    await Bun.sleep(lead); // the race window itself is what is under test
    run.child.kill("SIGTERM");
    const lines = await exitOf(run, 0);
    const after = await job(s, j.id);
    if (after.status === "completed") expect(after.result).toBe("Succeeded");
    else expect(after.status).toBe("queued");
    await nothingLeft(s, 20_000, lines);
  }, 60_000);
});

describe("a stop in every phase", () => {
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

  test.concurrent("SIGTERM while booting: the runner (if made) and the VM are removed, exit 0", async () => {
    const s = slots(world, {}, { boot_ms: 4000 });
    const run = loopBinary(s);
    await until("booting", () => slotState(s)?.phase === "boot");
    run.child.kill("SIGTERM");
    await nothingLeft(s, 20_000, await exitOf(run, 0));
  }, 60_000);
});
