// No failure mode becomes a restart storm or a storm of GitHub calls: under a
// launchd that restarts the slot as soon as it exits (ThrottleInterval 1 s),
// each failing slot is watched for a window and its spawns and API calls
// counted. Failing cycles back off (doubling, capped); errors before a cycle
// can start pause before exiting; a full state disk backs off the longest.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PRE_CYCLE_PAUSE_MS } from "../../lib/slot/loop.ts";
import { renderAgents } from "../../lib/host/launchd/render.ts";
import { startAgent } from "../../sim/launchd.ts";
import type { World } from "../../sim/world.ts";
import { BIN } from "../helpers/e2e.ts";
import { enqueue, events, exitOf, fileWorld, github, job, loopBinary, slots, slotState, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** Long enough for a backing-off slot to start three times (2 and 4 s of backoff between); a storm starts a dozen. */
const WINDOW_MS = 12_000;
/** Long enough to see the restart after one pre-cycle pause (a storm would restart a dozen times). */
const PAUSE_WINDOW_MS = PRE_CYCLE_PAUSE_MS + 2_000;
/** Backoff of these tests: 2 s doubling to 8 s (the defaults are 10 s to 10 min). */
const BACKOFF = { backoff_initial: "2s", backoff_max: "8s" };

/** Runs slot 1 under the launchd stand-in for the window; returns when it spawned the loop and the API calls made. */
async function watch(s: Slots, o: { configPath?: string; windowMs?: number } = {}): Promise<{ spawns: number[]; calls: number; bootoutMs: number }> {
  const { configPath = s.path, windowMs = WINDOW_MS } = o;
  const before = Object.values((await github(s)).calls).reduce((a, b) => a + b, 0);
  const [agent] = renderAgents({ binDir: BIN, configPath, slots: 1, logDir: s.logDir, stateDir: s.stateDir, jobTimeoutMs: 60_000, pull: false, pullIntervalS: 300 }).map((a) => {
    const path = join(s.stateDir, "..", a.fileName);
    writeFileSync(path, a.xml);
    return path;
  });
  const spawns: number[] = [];
  const started = Date.now();
  const a = startAgent(agent!, { env: s.env, onSpawn: () => spawns.push(Date.now() - started) });
  await until("the window to pass", () => Date.now() - started >= windowMs, windowMs + 5_000, 200);
  const bootout = Date.now();
  await a.bootout();
  const bootoutMs = Date.now() - bootout;
  const calls = Object.values((await github(s)).calls).reduce((a, b) => a + b, 0) - before;
  return { spawns, calls, bootoutMs };
}

/** Gaps between spawns never shrink while the backoff grows (a little slack for process start-up). */
function expectBackingOff(spawns: number[]): void {
  const gaps = spawns.slice(1).map((t, i) => t - spawns[i]!);
  for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]! - 500);
}

describe("a failing slot backs off", () => {
  test.concurrent("GitHub down with a runner left behind: recovery backs off too", async () => {
    const s = slots(world, { host: BACKOFF }, { boot_ms: 150 });
    const first = loopBinary(s);
    await until("a runner made", () => slotState(s)?.runner_id !== undefined, 30_000, 20);
    first.child.kill("SIGKILL");
    await first.done;
    await world.gh.fault({ path: new RegExp(`^/orgs/${s.org}/`), status: 502, count: 10_000 });
    const { spawns, calls } = await watch(s);
    // Doubling from 2 s: three starts in the window (four at most); a fixed 2 s pause would make five, a storm a dozen.
    expect(spawns.length).toBeGreaterThanOrEqual(2);
    expect(spawns.length).toBeLessThanOrEqual(4);
    // Per cycle one DELETE of the leftover runner, retried at most 4 times; never cleaned twice.
    expect(calls).toBeLessThanOrEqual(4 * spawns.length);
    expectBackingOff(spawns);
  }, 60_000);

  test.concurrent("a config that cannot be read: paused before each exit", async () => {
    const s = slots(world, { host: BACKOFF });
    const broken = join(s.stateDir, "..", "broken.yml");
    writeFileSync(broken, "github: [\n");
    const { spawns } = await watch(s, { configPath: broken, windowMs: PAUSE_WINDOW_MS });
    expect(spawns.length).toBeLessThanOrEqual(3);
  }, 60_000);

  test.concurrent("the slot's lock held by another process: paused before each exit", async () => {
    const s = slots(world, { host: BACKOFF });
    const holder = spawn(process.execPath, ["-e", `const { lockSlot } = await import(${JSON.stringify(join(import.meta.dir, "../../lib/slot/lock.ts"))}); lockSlot(${JSON.stringify(s.stateDir)}, 1); console.log("held"); setInterval(() => {}, 1000);`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
    try {
      const { spawns, bootoutMs } = await watch(s, { windowMs: PAUSE_WINDOW_MS });
      expect(spawns.length).toBeLessThanOrEqual(3);
      // The bootout came during a pause (they fill the window): it ends the pause, not waits it out.
      expect(bootoutMs).toBeLessThan(PRE_CYCLE_PAUSE_MS / 2);
    } finally {
      holder.kill("SIGKILL");
    }
  }, 60_000);
});

describe("a full state disk", () => {
  test.concurrent("mid-job: the job finishes, the VM is cleaned from memory, the slot backs off the longest; once space is back it serves", async () => {
    // The state dir on a small volume of its own, which the test fills mid-job.
    const volume = join(world.dir, "small-volume");
    mkdirSync(volume, { recursive: true });
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", volume], { encoding: "utf8" });
    expect(mounted.status, `mounting a 256k tmpfs needs root: ${mounted.stderr}`).toBe(0);
    try {
      const stateDir = join(volume, "state");
      // backoff_max apart from backoff_initial, so that backing off the longest shows.
      const s = slots(world, { host: { backoff_initial: "200ms", backoff_max: "1s", state_dir: stateDir } }, { boot_ms: 150 });
      const j = await enqueue(s, "while-the-disk-fills", "sleep 2; echo done");
      const run = loopBinary(s);
      await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
      // dd stops at ENOSPC: the volume is full.
      spawnSync("dd", ["if=/dev/zero", `of=${join(volume, "filler")}`, "bs=4k", "count=1000"]);
      const r = await run.done;
      expect((await job(s, j.id)).result).toBe("Succeeded");
      expect(r.stderr).toContain("state.unpersisted");
      expect(events(r.lines, "backoff.start").map((l) => l.wait_ms)).toEqual([1000]);
      expect(r.stderr).not.toContain("    at ");
      expect(readdirSync(stateDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
      expect(vms(s).filter((v) => v.running)).toEqual([]);
      rmSync(join(volume, "filler"));
      const next = await enqueue(s, "after-space-is-back");
      const again = loopBinary(s);
      await until("served", async () => (await job(s, next.id)).result === "Succeeded", 40_000);
      again.child.kill("SIGTERM");
      await exitOf(again, 0);
    } finally {
      spawnSync("umount", ["-l", volume]);
    }
  }, 90_000);
});
