// The snapshot start, in process: a golden whose saved state no longer matches
// its hardware, or whose restore fails, makes the cycle boot cold in the same
// cycle and serve its job; the spoilt golden is deleted and made again by a
// later cycle. Two slots restore at once with a golden (and a MAC) each; a VM
// of the slot still running with the golden's MAC is forced off first. The
// restore path itself, on the fake tart's processes and timings, and
// `cleanup --golden` are in tests/e2e/snapshot.
import { afterEach, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { events, cycleHost, loopsAtOnce, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});


/** One loop serving one job to success; its log lines. */
async function serve(h: CycleHost, name: string) {
  const job = h.enqueue(name);
  const { code, lines } = await h.loop();
  expect(code).toBe(0);
  expect([h.job(job.id).result, h.job(job.id).attempts]).toEqual(["Succeeded", 1]);
  return lines;
}

test("a golden spoilt by `tart set` falls back to a cold boot in the same cycle; a later cycle makes the golden again", async () => {
  host = await cycleHost({ config: { vm: { start: "snapshot" } } });
  const h = host;
  const first = await serve(h, "makes-golden");
  expect(events(first, "golden.ready")).toHaveLength(1);
  const golden = (h.state().golden as { name: string }).name;
  // Someone changes the suspended golden's hardware: its saved state no longer fits it.
  await h.tart.set(golden, { cpu: 8 });
  // The VM made ahead predates the damage: remove it so this cycle clones the spoilt golden.
  const ahead = (h.state().next_vm as { name: string }).name;
  await h.clock.settle(h.tart.forceOff(ahead), { maxMs: 60_000 });
  await h.clock.settle(h.tart.delete(ahead), { maxMs: 60_000 });

  const spoilt = await serve(h, "spoilt");
  expect(events(spoilt, "snapshot.fallback")).toHaveLength(1);
  expect(h.state().path).toBe("cold");
  expect((await h.tart.list()).map((v) => v.Name)).not.toContain(golden);

  const again = await serve(h, "golden-again");
  expect(events(again, "golden.ready")).toHaveLength(1);
  expect(h.state().path).toBe("snapshot");
});

const SNAPSHOT = { vm: { start: "snapshot" } };
const golden = (h: CycleHost, slot = 1) => h.state(slot).golden as { name: string; image: string } | undefined;
const vmLog = (h: CycleHost, slot = 1) => readFileSync(join(h.config.host.logDir, `slot-${slot}.vm.log`), "utf8");
const restoring = (h: CycleHost, slot = 1) => vmLog(h, slot).split("\n").filter((l) => l === "restoring VM state from a snapshot...").length;

test("a failed restore boots the same cycle cold and serves the job; the golden is made again", async () => {
  // The first restore fails as a spoilt state does (the golden's own boot is cold, not a restore).
  host = await cycleHost({ config: SNAPSHOT, tart: { faults: [{ kind: "restore_failure", count: 1 }] } });
  const h = host;
  const failed = await serve(h, "restore-fails");
  expect(events(failed, "golden.ready")).toHaveLength(1);
  expect(events(failed, "snapshot.fallback")).toHaveLength(1);
  // The golden's boot and the fallback's are both cold: one restore, and it failed.
  expect(events(failed, "boot.done")).toHaveLength(2);
  expect(restoring(h)).toBe(1);
  expect(vmLog(h)).toContain("Failed to restore the virtual machine");
  expect(h.state().path).toBe("cold");
  expect(golden(h)).toBeUndefined();

  const again = await serve(h, "golden-again");
  expect(events(again, "golden.ready")).toHaveLength(1);
  expect(h.state().path).toBe("snapshot");
});

test("two slots have a golden each (own MAC) and restore concurrently without a MAC collision", async () => {
  host = await cycleHost({ config: SNAPSHOT });
  const h = host;
  // Jobs go to whichever slot listens first: both slots run a cycle, then both jobs must be done.
  const both = async (names: [string, string]) => {
    const jobs = names.map((n) => h.enqueue(n));
    const runs = await loopsAtOnce(h, [1, 2]);
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    for (const j of jobs) expect([h.job(j.id).result, h.job(j.id).attempts]).toEqual(["Succeeded", 1]);
    return runs.map((r) => r.lines);
  };
  // Goldens first (one cycle each), then both slots serve at once.
  await both(["warm-1", "warm-2"]);
  const [g1, g2] = [golden(h, 1)!, golden(h, 2)!];
  expect(g1.name).not.toBe(g2.name);
  expect(h.tart.macAddress(g1.name)).not.toBe(h.tart.macAddress(g2.name));
  const [a, b] = await both(["both-1", "both-2"]);
  for (const lines of [a!, b!]) {
    expect(events(lines, "cycle.start")[0]).toMatchObject({ path: "snapshot" });
    expect(events(lines, "snapshot.restored")).toHaveLength(1);
  }
  for (const slot of [1, 2]) expect(vmLog(h, slot)).not.toContain("same MAC address");
});

test("a VM of the slot still running with the golden's MAC is forced off before a clone restores (snapshot.mac_in_use), not left to make tart reset the MAC", async () => {
  host = await cycleHost({ config: SNAPSHOT });
  const h = host;
  await serve(h, "makes-golden");
  const g = golden(h)!;
  // The VM started ahead has restored already (its saved state is gone): removed, so this cycle clones the golden afresh.
  const pre = (h.state().next_vm as { name: string }).name;
  await h.clock.settle(h.tart.forceOff(pre), { maxMs: 60_000 });
  await h.clock.settle(h.tart.delete(pre), { maxMs: 60_000 });
  const path = join(h.config.host.stateDir, "slot-1.json");
  const state = JSON.parse(readFileSync(path, "utf8"));
  delete state.next_vm;
  writeFileSync(path, JSON.stringify(state));
  // A VM of the slot, cloned from the golden (so with its MAC), left running as a wrapper around tart can leave one.
  const holder = pre.replace(/[0-9a-f]{6}$/, "0000aa");
  await h.clock.settle(h.tart.clone(g.name, holder, 60_000), { maxMs: 60_000 });
  expect(h.tart.macAddress(holder)).toBe(h.tart.macAddress(g.name));
  // Started again while it meets the VM limit: the places of the VMs just stopped take a while to free.
  await h.clock.settle((async () => {
    while (!(await h.tart.isRunning(holder))) {
      h.tart.run(holder, join(h.config.host.logDir, "holder.log"));
      await h.clock.sleep(200);
    }
  })(), { maxMs: 30_000 });
  const lines = await serve(h, "restores");
  const vm = events(lines, "cycle.start")[0]!.vm;
  expect(events(lines, "snapshot.mac_in_use").map((l) => [l.vm, l.holder])).toEqual([[vm, holder]]);
  expect(events(lines, "snapshot.restored")).toHaveLength(1);
  expect(h.state().path).toBe("snapshot");
  expect(await h.tart.isRunning(holder)).toBe(false);
  expect(vmLog(h)).not.toContain("same MAC address");
});
