// Warm start from a snapshot (vm.start: snapshot) on the fake tart's
// processes: each slot boots a golden once and suspends it; cycles restore
// clones of it and sync the guest clock; a new image replaces the golden;
// `cleanup --golden` removes it. In the first test boot and restore take
// distinct sim times (2 s against 0.3 s), so a cycle's boot time tells which
// one it took. The
// fallback of a failed restore, two slots at once and a MAC still in use are
// in tests/cycle/snapshot.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE_MARKER } from "../../sim/image/fixture.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, github, job, loopBinary, nothingLeft, slots, slotState, start, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

const SNAPSHOT = { vm: { start: "snapshot" } };
const TIMES = { boot_ms: 2000, restore_ms: 300, suspend_ms: 100 };
/** Where which start a cycle took is not the question: quick enough that the guest agent answers `tart exec`'s first try (a miss costs its 1 s reconnect). */
const QUICK = { boot_ms: 150, restore_ms: 50, suspend_ms: 100 };
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
const vmLog = (s: Slots, slot = 1) => readFileSync(join(s.logDir, `slot-${slot}.vm.log`), "utf8");
/** How many VMs of the slot tart restored from a snapshot (rather than booted); the next VM, started ahead, may count already. */
const restores = (s: Slots, slot = 1) => vmLog(s, slot).split("\n").filter((l) => l === "restoring VM state from a snapshot...").length;

describe("snapshot start", () => {
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
    const s = slots(world, { ...SNAPSHOT, image: { min_free_gb: 1 } }, QUICK);
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

  test.concurrent("cleanup keeps the golden; cleanup --golden removes it, and nothing is left", async () => {
    const s = slots(world, SNAPSHOT, QUICK);
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
