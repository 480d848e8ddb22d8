// The next cycle's VM started ahead: a healthy cycle, as it ends, starts the
// VM it cloned while its job ran; the next cycle waits for that VM instead of
// starting it. It is trusted by the identity of its `tart run` process (pid
// and start time): here with real processes (one gone with a host restart, a
// pid reused by another); nothing of it outlives cleanup. That its age and a
// record without the start time are not trusted is in tests/cycle/next-vm.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { isAlive } from "../../lib/vm/tart.ts";
import { join } from "node:path";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, job, loopBinary, nothingLeft, slots, slotState, start, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

interface NextVm {
  name: string;
  run?: { pid: number; pid_start?: string; started_at: string; log_offset: number };
}

/** Changes what the state file says about the VM started ahead. */
function rewriteRun(s: Slots, patch: Record<string, unknown>): void {
  const path = join(s.stateDir, "slot-1.json");
  const state = JSON.parse(readFileSync(path, "utf8"));
  state.next_vm.run = { ...state.next_vm.run, ...patch };
  writeFileSync(path, JSON.stringify(state));
}

/** One cycle of the compiled loop serving one job; its log lines. */
async function serve(s: Slots, name: string) {
  const j = await enqueue(s, name);
  const lines = await exitOf(loopBinary(s), 0);
  const done = await job(s, j.id);
  expect(done.result).toBe("Succeeded");
  return Object.assign(lines, { runner: done.runner_name });
}

const nextVm = (s: Slots) => slotState(s)!.next_vm as NextVm;

describe("the next VM started ahead", () => {
  test.concurrent("a healthy cycle starts the next VM as it exits; the next cycle waits for it and serves its job on it", async () => {
    const s = slots(world, {}, { boot_ms: 1500 });
    const first = await serve(s, "first");
    const next = nextVm(s);
    expect(events(first, "next_vm.booted").map((l) => l.vm)).toEqual([next.name]);
    expect(isAlive(next.run!.pid)).toBe(true);
    expect(next.run!.pid_start).toBeString();
    await until("the next VM runs", () => vms(s).find((v) => v.name === next.name)?.running);
    const second = await serve(s, "second");
    expect(events(second, "boot.attached").map((l) => l.pid)).toEqual([next.run!.pid]);
    expect(second.runner).toBe(next.name);
  }, 60_000);

  test.concurrent("a VM started ahead that is gone by the next cycle (a host restart) is started again, and the job is served", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    await serve(s, "first");
    const next = nextVm(s);
    process.kill(next.run!.pid, "SIGKILL");
    await until("the VM is off", () => vms(s).every((v) => !v.running));
    const lines = await serve(s, "second");
    expect(events(lines, "boot.restart")).toHaveLength(1);
    expect(events(lines, "boot.attached")).toEqual([]);
  }, 60_000);

  test.concurrent("a recorded pid that now names another process (reused) is not attached: the VM is forced off and started again", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    await serve(s, "first");
    const next = nextVm(s);
    // The pid now names another live process (this test's own), which started at another time than the one recorded.
    rewriteRun(s, { pid: process.pid });
    const lines = await serve(s, "second");
    expect(events(lines, "boot.attached")).toEqual([]);
    expect(events(lines, "boot.restart").map((l) => l.pid)).toEqual([process.pid]);
    expect(isAlive(process.pid)).toBe(true);
    expect(isAlive(next.run!.pid)).toBe(false);
  }, 60_000);

  test.concurrent("cleanup removes a VM started ahead when no cycle follows (the agent was unloaded between cycles)", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    await serve(s, "only");
    await until("the next VM runs", () => vms(s).some((v) => v.running));
    expect((await start(world, "cleanup", ["--slot", "1", "--config", s.path], s.host.env).done).code).toBe(0);
    await nothingLeft(s);
  }, 60_000);
});
