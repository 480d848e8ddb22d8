// host.tart_path as a wrapper script that runs tart as its child (not `exec`)
// and forwards no signal, as a logging shim, `sudo -u` or a version manager's
// shim can. The harsher case: tart runs in a session of its own (as under a
// wrapper that gives it a terminal), so neither a signal to the process the
// slot started nor one to its process group reaches tart; the wrapper dies
// and the VM runs on. A VM counts as off only when tart says so: with
// snapshot start every cycle restores (no clone meets a running VM with the
// golden's MAC), and with cold start no VM of the slot starts while the
// previous one still runs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runState } from "../../sim/tart/running.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, job, loopBinary, slots, slotState, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** A wrapper that keeps itself between us and tart: tart is its child in a session of its own, its exit status passed on, no signal forwarded. */
function wrapper(name: string): string {
  const tart = join(import.meta.dir, "..", "..", "sim", "bin", "tart");
  const path = join(world.dir, `${name}-tart-wrapper`);
  writeFileSync(path, `#!/bin/sh\nsetsid --wait "${tart}" "$@"\nstatus=$?\nexit $status\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Boot time is not the subject: the golden's cold boot and the first VM's are short. */
function wrapped(name: string, overrides: Record<string, unknown>, times: Record<string, number>): Slots {
  return slots(world, { ...overrides, host: { tart_path: wrapper(name) } }, times);
}

/** The test's VMs whose `tart run` is alive now (tart's own record of a running VM). */
function runningNow(s: Slots): string[] {
  const dir = join(s.host.tartHome, "vms");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n.startsWith(`${s.prefix}-`) && runState(join(dir, n)) !== undefined);
}

/** Samples the running VMs every 20 ms until stopped; the most seen at once, and when. */
function watchRunning(s: Slots) {
  let most: string[] = [];
  const timer = setInterval(() => {
    const now = runningNow(s);
    if (now.length > most.length) most = now;
  }, 20);
  return { stop: () => (clearInterval(timer), most) };
}

async function serve(s: Slots, name: string) {
  const j = await enqueue(s, name);
  const lines = await exitOf(loopBinary(s), 0);
  expect((await job(s, j.id)).result).toBe("Succeeded");
  return lines;
}

/**
 * The first cycle makes the slot's first VM (and, with snapshot start, the
 * golden); each later one follows a cycle whose VM the wrapper left running,
 * the case under test: twice.
 */
const CYCLES = 3;

describe("host.tart_path is a wrapper that does not exec tart", () => {
  test.concurrent("snapshot start: every cycle restores; no clone of the golden meets a running VM with its MAC", async () => {
    const s = wrapped("snap", { vm: { start: "snapshot" } }, { boot_ms: 100 });
    const paths: string[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const lines = await serve(s, `snap-${i}`);
      expect(events(lines, "snapshot.not_restored")).toEqual([]);
      expect(events(lines, "snapshot.restored")).toHaveLength(1);
      paths.push(String(slotState(s)!.path));
    }
    expect(paths).toEqual(Array(CYCLES).fill("snapshot"));
    expect(readFileSync(join(s.logDir, "slot-1.vm.log"), "utf8")).not.toContain("same MAC address");
  }, 120_000);

  test.concurrent("cold start: no VM of the slot starts while the previous one still runs", async () => {
    const s = wrapped("cold", {}, { boot_ms: 100 });
    const watch = watchRunning(s);
    try {
      for (let i = 0; i < CYCLES; i++) await serve(s, `cold-${i}`);
    } finally {
      const most = watch.stop();
      expect(most.length).toBeLessThanOrEqual(1);
    }
  }, 120_000);
});
