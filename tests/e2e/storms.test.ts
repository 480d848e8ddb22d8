// No failure mode becomes a restart storm or a storm of GitHub calls: under a
// launchd that restarts the slot as soon as it exits (ThrottleInterval 1 s),
// each failing slot is watched for a while and its spawns and API calls
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
import { enqueue, events, exitOf, fileWorld, github, job, logLines, logText, loopBinary, slots, slotState, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** Three of launchd's ThrottleIntervals (1 s): a slot that exits at once is spawned three or four times in it; one that pauses, once. */
const PAUSE_WINDOW_MS = 3_000;
/** Backoff of these tests: 1 s doubling to 8 s (the defaults are 10 s to 10 min). */
const BACKOFF_INITIAL_MS = 1_000;
const BACKOFF = { backoff_initial: `${BACKOFF_INITIAL_MS}ms`, backoff_max: "8s" };

/**
 * Runs slot 1 under the launchd stand-in until `done` (given the ms since the load) holds, then boots it out; returns
 * when launchd spawned the loop (epoch ms), the API calls made, whether the loop was still running, and how long the bootout took.
 */
async function watch(s: Slots, done: (elapsedMs: number) => boolean, o: { configPath?: string } = {}) {
  const { configPath = s.path } = o;
  const before = Object.values((await github(s)).calls).reduce((a, b) => a + b, 0);
  const [agent] = renderAgents({ binDir: BIN, configPath, slots: 1, logDir: s.logDir, stateDir: s.stateDir, jobTimeoutMs: 60_000, pull: false, pullIntervalS: 300 }).map((a) => {
    const path = join(s.stateDir, "..", a.fileName);
    writeFileSync(path, a.xml);
    return path;
  });
  const spawns: number[] = [];
  const started = Date.now();
  const a = startAgent(agent!, { env: s.env, onSpawn: () => spawns.push(Date.now()) });
  const late = await until("the slot to get there under launchd", () => done(Date.now() - started), 40_000, 100).then(() => undefined, (err: unknown) => err);
  const running = a.pid !== undefined;
  const bootout = Date.now();
  await a.bootout();
  const bootoutMs = Date.now() - bootout;
  if (late) {
    console.error(`spawned at ${JSON.stringify(spawns.map((t) => t - started))} ms; the log:\n${logText(logLines(s))}`);
    throw late;
  }
  const calls = Object.values((await github(s)).calls).reduce((a, b) => a + b, 0) - before;
  return { spawns, calls, running, bootoutMs };
}

describe("a failing slot backs off", () => {
  test.concurrent("GitHub down with a runner left behind: recovery backs off too, and the next launch doubles it", async () => {
    const s = slots(world, { host: BACKOFF }, { boot_ms: 150 });
    const first = loopBinary(s);
    await until("a runner made", () => slotState(s)?.runner_id !== undefined, 30_000, 20);
    first.child.kill("SIGKILL");
    await first.done;
    await world.gh.fault({ path: new RegExp(`^/orgs/${s.org}/`), status: 502, count: 10_000 });
    // Watched until the second launch backs off: each cycle spends ~3.5 s on GitHub's retries before it fails.
    const { spawns, calls } = await watch(s, () => events(logLines(s), "backoff.start").length >= 2);
    const backoffs = events(logLines(s), "backoff.start");
    // The failure count outlived the process: the second launch backed off twice as long.
    expect(backoffs.map((l) => l.wait_ms)).toEqual([BACKOFF_INITIAL_MS, 2 * BACKOFF_INITIAL_MS]);
    // launchd restarts a loop as soon as it exits: the backoff kept the loop alive, so the second launch came no sooner
    // than the backoff after the first cycle failed (at once, it would come within the process's exit).
    expect(spawns).toHaveLength(2);
    expect(spawns[1]! - Date.parse(backoffs[0]!.time)).toBeGreaterThanOrEqual(BACKOFF_INITIAL_MS - 20);
    // Per cycle one DELETE of the leftover runner, retried at most 4 times; never cleaned twice.
    expect(calls).toBeLessThanOrEqual(4 * spawns.length);
  }, 60_000);

  test.concurrent("a config that cannot be read: paused before each exit", async () => {
    const s = slots(world, { host: BACKOFF });
    const broken = join(s.stateDir, "..", "broken.yml");
    writeFileSync(broken, "github: [\n");
    const { spawns, running } = await watch(s, (ms) => ms >= PAUSE_WINDOW_MS, { configPath: broken });
    // Still in its first pause: launchd had nothing to restart.
    expect(spawns).toHaveLength(1);
    expect(running).toBe(true);
  }, 60_000);

  test.concurrent("the slot's lock held by another process: paused before each exit", async () => {
    const s = slots(world, { host: BACKOFF });
    const holder = spawn(process.execPath, ["-e", `const { lockSlot } = await import(${JSON.stringify(join(import.meta.dir, "../../lib/slot/lock.ts"))}); lockSlot(${JSON.stringify(s.stateDir)}, 1); console.log("held"); setInterval(() => {}, 1000);`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
    try {
      const { spawns, running, bootoutMs } = await watch(s, (ms) => ms >= PAUSE_WINDOW_MS);
      expect(spawns).toHaveLength(1);
      expect(running).toBe(true);
      // The bootout came during the pause: it ends the pause, not waits it out.
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
