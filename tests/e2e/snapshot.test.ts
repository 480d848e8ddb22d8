// Warm start from a snapshot (vm.start: snapshot): each slot boots a golden
// once and suspends it; cycles restore clones of it, sync the guest clock,
// and fall back to a cold boot when a restore fails. Boot and restore take
// distinct sim times (2 s against 0.3 s), so a cycle's boot time tells which
// one it took.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE_MARKER } from "../../sim/image/fixture.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, github, job, loopBinary, nothingLeft, slots, slotState, start, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

const SNAPSHOT = { vm: { start: "snapshot" } };
const TIMES = { boot_ms: 2000, restore_ms: 300, suspend_ms: 100 };
const DIRTY_CHECK = 'test ! -e "$HOME/left-by-previous-job" || { echo "dirty VM"; exit 1; }; touch "$HOME/left-by-previous-job"';

/** One loop cycle serving one job; its log lines. */
async function serve(s: Slots, name: string, script = DIRTY_CHECK) {
  const j = await enqueue(s, name, script);
  const lines = await exitOf(loopBinary(s, 1), 0);
  const done = await job(s, j.id);
  expect([done.name, done.result, done.attempts]).toEqual([name, "Succeeded", 1]);
  return lines;
}

const bootTime = (lines: { event: string; duration_ms?: unknown }[]) => events(lines as never, "boot.done").map((l) => l.duration_ms as number);
const golden = (s: Slots, slot = 1) => slotState(s, slot)?.golden as { name: string; image: string } | undefined;

function tart(s: Slots, ...args: string[]): string {
  const r = spawnSync(s.config.host.tartPath, args, { env: s.env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tart ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}
const macOf = (s: Slots, vm: string) => (JSON.parse(readFileSync(join(s.host.tartHome, "vms", vm, "config.json"), "utf8")) as { macAddress: string }).macAddress;
const vmLog = (s: Slots, slot = 1) => readFileSync(join(s.logDir, `slot-${slot}.vm.log`), "utf8");
/** How many VMs of the slot tart restored from a snapshot (rather than booted); the next VM, started ahead, may count already. */
const restores = (s: Slots, slot = 1) => vmLog(s, slot).split("\n").filter((l) => l === "restoring VM state from a snapshot...").length;

describe("snapshot start", () => {
  // The longest test first: it runs beside the others, not after them.
  test.concurrent("a failed restore boots the same cycle cold and serves the job; the golden is made again", async () => {
    // The first restore fails as a spoilt state does (the golden's own boot is cold, not a restore).
    const s = slots(world, SNAPSHOT, { ...TIMES, faults: [{ kind: "restore_failure", count: 1 }] });
    const failed = await serve(s, "restore-fails");
    expect(events(failed, "golden.ready")).toHaveLength(1);
    expect(events(failed, "snapshot.fallback")).toHaveLength(1);
    // The golden's boot and the fallback's are both cold; the failed restore never reached SSH.
    const boots = bootTime(failed);
    expect(boots).toHaveLength(2);
    for (const b of boots) expect(b).toBeGreaterThanOrEqual(TIMES.boot_ms);
    expect(slotState(s)!.path).toBe("cold");
    expect(vmLog(s)).toContain("Failed to restore the virtual machine");
    expect(golden(s)).toBeUndefined();

    const again = await serve(s, "golden-again");
    expect(events(again, "golden.ready")).toHaveLength(1);
    expect(slotState(s)!.path).toBe("snapshot");
  }, 90_000);

  test.concurrent("the first cycle makes the golden; later cycles restore clones of it in restore time, clock synced before the runner connects", async () => {
    const s = slots(world, SNAPSHOT, TIMES);
    const first = await serve(s, "first");
    const g = golden(s)!;
    expect(g.name).toStartWith(`${s.prefix}-`);
    expect(g.name).toContain("-1-golden-");
    expect(events(first, "golden.ready")).toHaveLength(1);
    // The golden's own boot is cold (2 s); the cycle's VM restores: tart says so, and it is faster than that cold boot.
    const [goldenBoot, firstBoot] = bootTime(first);
    expect(goldenBoot).toBeGreaterThanOrEqual(TIMES.boot_ms);
    expect(restores(s)).toBeGreaterThanOrEqual(1);
    expect(firstBoot).toBeLessThan(goldenBoot!);
    expect(events(first, "cycle.start")[0]!.path).toBe("snapshot");

    const second = await serve(s, "second");
    expect(events(second, "golden.make")).toHaveLength(0);
    expect(events(second, "cycle.start")[0]!.path).toBe("snapshot");
    expect(slotState(s)!.path).toBe("snapshot");
    const [restore] = bootTime(second);
    expect(restore).toBeGreaterThanOrEqual(TIMES.restore_ms);
    // Started ahead by the first cycle: its time counts from that start, the gap between the two loop processes
    // included, so it is no measure against a cold boot; tart's word that it restored is.
    expect(restores(s)).toBeGreaterThanOrEqual(2);
    expect(vmLog(s)).not.toContain("same MAC address");
    // The restored guest's clock was stale: synced, and only then did the runner connect (it refuses a stale clock).
    const order = second.map((l) => l.event);
    expect(order.indexOf("snapshot.clock_synced")).toBeGreaterThan(-1);
    expect(order.indexOf("snapshot.clock_synced")).toBeLessThan(order.indexOf("runner.listening"));
    expect(second.filter((l) => String(l.msg ?? "").includes("clock skew"))).toEqual([]);
    // Each job on a VM of its own; the golden stays suspended, never served a job.
    const gh = await github(s);
    expect(new Set(gh.jobs.map((j) => j.runner_name)).size).toBe(2);
    expect(gh.jobs.map((j) => j.runner_name)).not.toContain(g.name);
    expect(JSON.parse(tart(s, "get", g.name, "--format", "json")).State).toBe("suspended");
  }, 60_000);

  test.concurrent("a newly pinned image replaces the golden (the old one is deleted); jobs run on the new image", async () => {
    const s = slots(world, { ...SNAPSHOT, image: { min_free_gb: 1 } }, TIMES);
    const pull = () => start(world, "pull", ["--config", s.path], s.host.env).done;
    expect((await pull()).code).toBe(0);
    await serve(s, "on-v1", `test ! -e "$HOME/${IMAGE_MARKER}"`);
    const g1 = golden(s)!;
    await world.publishVersion({ marker: "v2-snap", runnerVersion: "2.336.0" });
    expect((await pull()).code).toBe(0);
    const lines = await serve(s, "on-v2", `test "$(cat "$HOME/${IMAGE_MARKER}")" = v2-snap`);
    const g2 = golden(s)!;
    expect(g2.name).not.toBe(g1.name);
    expect(g2.image).not.toBe(g1.image);
    expect(events(lines, "golden.deleted").map((l) => l.vm)).toEqual([g1.name]);
    expect(vms(s).map((v) => v.name)).not.toContain(g1.name);
    expect(slotState(s)!.path).toBe("snapshot");
  }, 90_000);

  test.concurrent("two slots have a golden each (own MAC) and restore concurrently without a MAC collision", async () => {
    const s = slots(world, SNAPSHOT, TIMES);
    // Jobs go to whichever slot listens first: both slots run a cycle, then both jobs must be done.
    const both = async (names: [string, string]) => {
      const jobs = await Promise.all(names.map((n) => enqueue(s, n, DIRTY_CHECK)));
      const lines = await Promise.all([exitOf(loopBinary(s, 1), 0), exitOf(loopBinary(s, 2), 0)]);
      for (const j of jobs) expect((await job(s, j.id)).result).toBe("Succeeded");
      return lines;
    };
    // Goldens first (one cycle each), then both slots serve at once.
    await both(["warm-1", "warm-2"]);
    const [g1, g2] = [golden(s, 1)!, golden(s, 2)!];
    expect(g1.name).not.toBe(g2.name);
    expect(macOf(s, g1.name)).not.toBe(macOf(s, g2.name));
    const [a, b] = await both(["both-1", "both-2"]);
    for (const lines of [a, b]) {
      expect(events(lines, "cycle.start")[0]!.path).toBe("snapshot");
      expect(events(lines, "snapshot.restored")).toHaveLength(1);
    }
    for (const slot of [1, 2]) expect(vmLog(s, slot)).not.toContain("same MAC address");
  }, 90_000);

  test.concurrent("a VM of the slot still running with the golden's MAC is forced off before a clone restores (snapshot.mac_in_use), not left to make tart reset the MAC", async () => {
    const s = slots(world, SNAPSHOT, TIMES);
    await serve(s, "makes-golden");
    const g = golden(s)!;
    // The VM started ahead has restored already (its saved state is gone): removed, so this cycle clones the golden afresh.
    const pre = (slotState(s)!.next_vm as { name: string }).name;
    await until("the VM started ahead runs", () => vms(s).find((v) => v.name === pre)?.running);
    tart(s, "stop", pre, "--timeout", "0");
    // `tart stop --timeout 0` returns right after its SIGKILL: off once tart shows it so.
    await until("the VM started ahead is off", () => vms(s).find((v) => v.name === pre)?.running === false);
    tart(s, "delete", pre);
    const path = join(s.stateDir, "slot-1.json");
    const state = JSON.parse(readFileSync(path, "utf8"));
    delete state.next_vm;
    writeFileSync(path, JSON.stringify(state));
    // A VM of the slot, cloned from the golden (so with its MAC), left running as a wrapper around tart can leave one.
    const holder = pre.replace(/[0-9a-f]{6}$/, "0000aa");
    tart(s, "clone", g.name, holder);
    // Started again while it meets the VM limit: the places of the VMs just stopped take a while to free.
    let run: ChildProcess | undefined;
    await until("the holder runs", () => {
      if (!run || run.exitCode !== null) (run = spawn(s.config.host.tartPath, ["run", "--no-graphics", holder], { env: s.env, stdio: "ignore", detached: true })).unref();
      return vms(s).find((v) => v.name === holder)?.running;
    }, 30_000, 200);
    expect(macOf(s, holder)).toBe(macOf(s, g.name));
    const lines = await serve(s, "restores");
    const vm = events(lines, "cycle.start")[0]!.vm;
    expect(events(lines, "snapshot.mac_in_use").map((l) => [l.vm, l.holder])).toEqual([[vm, holder]]);
    expect(events(lines, "snapshot.restored")).toHaveLength(1);
    expect(slotState(s)!.path).toBe("snapshot");
    expect(vms(s).find((v) => v.name === holder)?.running).toBeFalsy();
    expect(vmLog(s)).not.toContain("same MAC address");
  }, 90_000);

  test.concurrent("cleanup keeps the golden; cleanup --golden removes it, and nothing is left", async () => {
    const s = slots(world, SNAPSHOT, TIMES);
    await serve(s, "one");
    const g = golden(s)!;
    const cleanup = (...args: string[]) => start(world, "cleanup", ["--slot", "1", "--config", s.path, ...args], s.host.env).done;
    expect((await cleanup()).code).toBe(0);
    expect(vms(s)).toEqual([{ name: g.name, running: false }]);
    expect(golden(s)).toEqual(g);
    expect((await cleanup("--golden")).code).toBe(0);
    expect(golden(s)).toBeUndefined();
    await nothingLeft(s);
  }, 60_000);
});
