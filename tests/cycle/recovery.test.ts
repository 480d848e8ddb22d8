// Recovery, in process: what a crashed VM, a lost or garbled state file or a
// failed sweep left is found and removed, runner first; a busy ghost never
// holds the slot; neighbours are never touched. What a loop killed mid-phase
// leaves (its own state file, written up to the kill) needs a process to
// kill: tests/e2e/recovery.
import { afterEach, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { hostId, slotNames } from "../../lib/config/names.ts";
import { exitCode } from "../../lib/core/errors.ts";
import { createLogger } from "../../lib/core/log.ts";
import { stopController } from "../../lib/core/signals.ts";
import { createGitHubClient } from "../../lib/github/client.ts";
import { generateJitConfig } from "../../lib/github/runners.ts";
import { until } from "../helpers/e2e.ts";
import { events, cycleHost, IMAGE, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

/** A host of its own for a test that runs beside others (real time, GitHub's and the client's retries, overlaps). */
async function withHost(test: (h: CycleHost) => Promise<void>): Promise<void> {
  const h = await cycleHost();
  try {
    await test(h);
  } finally {
    await h.close();
  }
}

const vmNames = async (h: CycleHost) => (await h.tart.list()).map((v) => v.Name);
const runnerNames = (h: CycleHost) => h.github.state().runners.map((r) => r.name);

/** A VM named as `prefix`'s slot `slot` names them, cloned on this host, and its JIT runner registered on GitHub. */
async function vmWithRunner(h: CycleHost, slot: number, prefix: string): Promise<{ name: string; jitConfig: string }> {
  const name = slotNames(prefix, slot, hostId(h.config.host.id, h.config.host.stateDir)).next();
  await h.clock.settle(h.tart.clone(IMAGE, name, 60_000), { maxMs: 60_000 });
  const gh = createGitHubClient(h.config.github, { stateDir: join(h.config.host.stateDir, "..", `gh-${prefix}-${slot}`), log: createLogger({ stream: new PassThrough() }) });
  const jit = await generateJitConfig(gh, { name, group: "Default", labels: h.config.runner.labels, workFolder: "_work" });
  return { name, jitConfig: jit.encodedJitConfig };
}

/**
 * What a loop of slot 1 killed while its runner listened leaves: its VM
 * running, its runner registered on GitHub and listening in that VM (the
 * guest's run.sh outlives the killed `tart exec`).
 */
async function killedWhileListening(h: CycleHost): Promise<string> {
  const { name, jitConfig } = await vmWithRunner(h, 1, h.prefix);
  h.tart.run(name, join(h.config.host.logDir, `${name}.log`));
  const { broker, registry } = h.github.world;
  const listening = () => [...registry.runners.values()].some((r) => r.name === name && broker.sessionOf(r)?.listeningSince !== undefined);
  await h.clock.settle((async () => {
    while (!(await h.tart.isRunning(name))) await h.clock.sleep(10);
    const exec = h.tart.exec(name, "cd \"$HOME/actions-runner\" && exec ./run.sh", { input: `${jitConfig}\n` });
    while (!listening()) await h.clock.sleep(100);
    exec.kill("SIGKILL");
  })(), { maxMs: 60_000 });
  return name;
}

/**
 * One start of slot 1 until `jobs` are done (by its runner, or by the
 * predecessor's it waited for); stopped once its own runner listens with
 * them done, unless its cycle ended first (its own runner took the last job).
 */
async function serveThenStop(h: CycleHost, jobs: () => number[] | undefined) {
  const stop = stopController();
  void (async () => {
    for (;;) {
      await h.when("run.ready");
      if (jobs()?.every((id) => h.job(id).status === "completed")) return stop.request();
    }
  })();
  const run = await h.loop({ stop });
  expect(run.code).toBe(0);
  return run;
}

// The longest test first.
test("a VM that dies mid-job: the job is reported lost, its busy runner becomes a ghost, the slot serves the next job, the ghost is deleted later", async () => {
  // GitHub gives up on the vanished runner in 1.5 s of real time (GitHub: minutes).
  host = await cycleHost({ github: { sessionLeaseMs: 1_000, lostRunnerBusyMs: 500 } });
  const h = host;
  const lost = h.enqueue("dies-with-its-vm", "sleep 30");
  // The VM's run ends under the job, by no doing of the slot (as a crash ends it).
  void h.when("runner.job-started").then((l) => h.tart.forceOff(l.vm as string));
  const first = await h.loop();
  expect(first.code).toBe(exitCode("lost"));
  const vm = events(first.lines, "cycle.start")[0]!.vm;
  const report = events(first.lines, "job.lost")[0]!;
  expect(report.level).toBe("error");
  expect([report.job, report.vm, report.runner]).toEqual(["dies-with-its-vm", vm, vm]);
  expect(h.state().ghosts).toMatchObject([{ name: vm }]);

  const next = h.enqueue("served-while-the-ghost-is-busy");
  expect((await h.loop()).code).toBe(0);
  expect(h.job(next.id).result).toBe("Succeeded");
  // GitHub fails the lost job once it gives up on the vanished runner; it is never re-queued.
  await until("the lost job failed", () => h.job(lost.id).result === "Failed", 10_000);
  expect(h.job(lost.id).attempts).toBe(1);
  // A later cycle retries the ghost (at most once per host.backoff_max) and deletes it now that GitHub let it go.
  await h.clock.advance(h.config.host.backoffMaxMs);
  const later = h.enqueue("after-github-let-go");
  expect((await h.loop()).code).toBe(0);
  expect(h.job(later.id).result).toBe("Succeeded");
  expect(h.state().ghosts).toEqual([]);
  expect(runnerNames(h)).not.toContain(vm);
  // Stopped, the slot leaves nothing.
  const stop = stopController();
  stop.request();
  expect((await h.loop({ stop })).code).toBe(0);
  expect(await vmNames(h)).toEqual([]);
  expect(runnerNames(h)).toEqual([]);
});

const variants: [string, (path: string, vm: string) => void][] = [
  ["deleted", (p) => rmSync(p, { force: true })],
  ["empty", (p) => writeFileSync(p, "")],
  ["garbage", (p) => writeFileSync(p, "{\u0000\u0001 not json")],
  ["wrongly typed", (p) => writeFileSync(p, JSON.stringify({ phase: 7, failures: "many", vm: 42, ghosts: "none" }))],
  ["stale (an older cycle's)", (p, vm) => writeFileSync(p, JSON.stringify({ version: 1, slot: 1, phase: "done", vm: vm.replace(/[0-9a-f]{6}$/, "000000"), failures: 0 }))],
];
for (const [what, damage] of variants) {
  test(`a state file ${what}, with a running VM and a registered runner left behind: both found and removed; neighbours untouched`, () => withHost(async (h) => {
    const vm = await killedWhileListening(h);
    damage(join(h.config.host.stateDir, "slot-1.json"), vm);
    // Neighbours on the same host and org: slot 2, and a prefix that merely starts like ours.
    const others = [(await vmWithRunner(h, 2, h.prefix)).name, (await vmWithRunner(h, 1, `${h.prefix}2`)).name];
    // Queued once the start's recovery is over, so the runner left behind is removed, not ended by a job of its own.
    let jobId = 0;
    void h.when("cycle.start").then(() => (jobId = h.enqueue("served-after-the-forgetting").id));
    await serveThenStop(h, () => (jobId ? [jobId] : undefined));
    expect(h.job(jobId).result).toBe("Succeeded");
    expect(await vmNames(h)).not.toContain(vm);
    expect(runnerNames(h)).not.toContain(vm);
    for (const o of others) {
      expect(runnerNames(h)).toContain(o);
      expect(await vmNames(h)).toContain(o);
    }
  }));
}

test("a lost state's sweep cut short by GitHub is made by the next start, before anything new", () => withHost(async (h) => {
  const vm = await killedWhileListening(h);
  rmSync(join(h.config.host.stateDir, "slot-1.json"), { force: true });
  // The sweep's runner listing fails every retry: the start fails having written a fresh, valid state.
  h.github.world.faults.add({ method: "GET", path: "/orgs/acme/actions/runners", status: 503, count: 4 });
  const failed = await h.loop();
  expect(failed.code).not.toBe(0);
  expect(events(failed.lines, "cycle.failed").map((l) => l.msg).join("\n")).toMatch(/listing runners/);
  expect(await vmNames(h)).toContain(vm);
  // The next start cannot clone (so no cycle of its own reaches housekeeping): only its recovery can remove what the lost state named.
  h.tart.configure({ faults: [{ kind: "clone_disk_full" }] });
  const next = await h.loop();
  expect(next.code).not.toBe(0);
  expect(events(next.lines, "sweep.vm").map((l) => l.vm)).toContain(vm);
  expect(await vmNames(h)).not.toContain(vm);
  expect(runnerNames(h)).not.toContain(vm);
  expect(h.state().sweep_pending).toBeUndefined();
}));

test("a state file naming another host's or prefix's VM: logged at error, forgotten, never touched", () => withHost(async (h) => {
  const foreign = "someone-else-1-abcdef";
  writeFileSync(join(h.config.host.stateDir, "slot-1.json"), JSON.stringify({ version: 1, slot: 1, phase: "run", vm: foreign, runner_name: foreign, failures: 0 }));
  const job = h.enqueue("served-anyway");
  const { code, lines } = await h.loop();
  expect(code).toBe(0);
  expect(events(lines, "state.foreign_name").map((l) => l.level)).toContain("error");
  expect(h.job(job.id).result).toBe("Succeeded");
}));
