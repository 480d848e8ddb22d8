// An idle slot at rest: GitHub retires its idle runner every few seconds
// here (idleJitRunnerRetireMs), and the slot starts a new runner in the same
// VM instead of a new VM, until vm.idle_reuse_max or a new pin; the runner in
// the reused VM sees neither the files nor the process of the one before.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeImageLock } from "../../lib/image/pin.ts";
import type { LogLine } from "../../sim/logs.ts";
import type { World } from "../../sim/world.ts";
import { count, enqueue, events, exitOf, fileWorld, github, job, loopBinary, logText, nothingLeft, slots, slotState, until, vms, type Slots } from "./harness.ts";

/** GitHub's idle retirement, shortened: minutes on github.com. */
const RETIRE_MS = 2_500;

let world: World;
beforeAll(async () => {
  // A short session lease makes the sim check for idle runners every 500 ms, so a retirement comes on time.
  world = await fileWorld({ github: { idleJitRunnerRetireMs: RETIRE_MS, sessionLeaseMs: 2_000 } });
});
afterAll(() => world?.stop());

interface TartCall {
  cmd: string;
  args: string[];
}

/** The tart commands this test's host ran (the sim's trace: one line per tart process). */
function tartCalls(file: string): TartCall[] {
  if (!existsSync(file)) return [];
  const calls = new Map<number, TartCall>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line) as { kind: string; pid: number; cmd: string; args: string[] };
    if (e.kind === "tart") calls.set(e.pid, { cmd: e.cmd, args: e.args });
  }
  return [...calls.values()];
}

interface DiagRecord {
  event: "start" | "configured" | "exit";
  at: number;
  pid: number;
  found?: string[];
  listeners?: number[];
  agentId?: number;
  rc?: number;
}

/** The fake runner's start records in a VM's runner directory (one file per listener start), oldest first. */
function runnerStarts(s: Slots, vm: string): DiagRecord[][] {
  const dir = join(s.host.tartHome, "vms", vm, "disk.img", "Users", "admin", "actions-runner", "_diag");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.startsWith("Runner_"))
    .map((f) => readFileSync(join(dir, f), "utf8").trim().split("\n").map((l) => JSON.parse(l) as DiagRecord))
    .sort((a, b) => a[0]!.at - b[0]!.at);
}

const replacedIn = (lines: LogLine[]) => events(lines, "runner.replaced").length;

// The longest tests first: they run beside the others, not after them.
describe("a runner GitHub retires before any job", () => {
  test.concurrent("retired before its session opened (the runner keeps its files then): the files are removed before the next runner", async () => {
    // The runner takes longer to start than GitHub lets it sit: retired before it ever listens.
    const s = slots(world, {}, { boot_ms: 150, runner_start_ms: RETIRE_MS + 2_500 });
    const run = loopBinary(s);
    await until("2 runners replaced", () => replacedIn(run.lines()) >= 2, 40_000, 100);
    const vm = slotState(s)!.vm as string;
    const starts = await until("2 runner starts ended", () => {
      const all = runnerStarts(s, vm);
      return all.filter((r) => r.some((x) => x.event === "exit")).length >= 2 && all;
    }, 20_000, 100);
    run.child.kill("SIGTERM");
    await run.done;
    for (const records of starts) expect(records[0]!.found, JSON.stringify(starts)).toEqual([]);
    // The real runner exits 1 ("Please reconfigure the runner") and leaves its files: only the guest command removed them.
    expect(starts[0]!.find((r) => r.event === "exit")!.rc).toBe(1);
    expect(events(run.lines(), "runner.runner-gone").length).toBeGreaterThan(0);
  }, 60_000);

  test.concurrent("is replaced in the same VM: one VM, one JIT call per retirement; a job then runs on that VM", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const traceFile = join(s.stateDir, "tart-trace.jsonl");
    const run = loopBinary(s, 1, { SIM_TART_TRACE: traceFile });
    await until("3 runners replaced", () => replacedIn(run.lines()) >= 3, 30_000, 100);
    const idle = tartCalls(traceFile);
    const vm = slotState(s)!.vm as string;
    // One VM booted; besides it, only the next cycle's VM was cloned ahead (never started while idle).
    const runs = idle.filter((c) => c.cmd === "run");
    expect(runs.length).toBe(1);
    expect(runs[0]!.args).toContain(vm);
    expect(idle.filter((c) => c.cmd === "clone").length).toBeLessThanOrEqual(2);
    expect(events(run.lines(), "cycle.start").length).toBe(1);
    const state = slotState(s)!;
    expect(state.vm_runners as number).toBeGreaterThanOrEqual(4);

    const j = await enqueue(s, "after-idle", 'echo "$RUNNER_NAME"');
    const lines = await exitOf(run, 0);
    const served = await job(s, j.id);
    expect(served.result).toBe("Succeeded");
    const gh = await github(s);
    const replaced = events(lines, "runner.replaced");
    // The job ran on the VM of the first runner, by the last runner started in it.
    expect(new Set(replaced.map((l) => l.vm))).toEqual(new Set([vm]));
    expect(served.runner_name).toBe(replaced.at(-1)!.runner as string);
    expect(events(lines, "cycle.done")[0]!.vm_runners).toBe(replaced.length + 1);
    // One generate-jitconfig per runner (the first and one per retirement), no DELETE
    // (a retired runner is gone; the last one completed its job); at most one token
    // fetch and one sweep besides.
    expect(count(gh.calls, "generate-jitconfig")).toBe(replaced.length + 1);
    expect(count(gh.calls, "DELETE")).toBe(0);
    const total = Object.values(gh.calls).reduce((a, b) => a + b, 0);
    expect(total - count(gh.calls, "generate-jitconfig")).toBeLessThanOrEqual(2);
    expect(gh.violations).toEqual([]);
    // Every runner that listened in the VM was retired (GitHub deleted it) or ran the job.
    expect(gh.runners).toEqual([]);
  }, 60_000);

  test.concurrent("the runner in the reused VM cannot see the retired runner's files or process", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const run = loopBinary(s);
    await until("2 runners replaced", () => replacedIn(run.lines()) >= 2, 30_000, 100);
    const vm = slotState(s)!.vm as string;
    const runnerIds = [events(run.lines(), "token.done")[0]?.runner_id, ...events(run.lines(), "runner.replaced").map((l) => l.runner_id)];
    const j = await enqueue(s, "look", "ls -a \"$HOME/actions-runner\"; cat \"$HOME/actions-runner/.runner\"");
    await exitOf(run, 0);
    expect((await job(s, j.id)).result).toBe("Succeeded");

    const starts = runnerStarts(s, vm);
    expect(starts.length).toBeGreaterThanOrEqual(3);
    for (const [i, records] of starts.entries()) {
      const [start] = records;
      // Nothing of an earlier runner at its start: no config file, no listener of this directory alive.
      expect({ i, found: start!.found, listeners: start!.listeners }).toEqual({ i, found: [], listeners: [] });
      if (i === 0) continue;
      // The previous runner had exited before this one started.
      const previousExit = starts[i - 1]!.find((r) => r.event === "exit");
      expect(previousExit, `runner start ${i - 1} has no exit record`).toBeDefined();
      expect(previousExit!.at).toBeLessThanOrEqual(start!.at);
    }
    // Each start ran its own runner, a new one each time.
    const agents = starts.map((r) => r.find((x) => x.event === "configured")?.agentId);
    expect(new Set(agents).size).toBe(starts.length);
    for (const id of runnerIds.filter((x) => x !== undefined)) expect(agents).toContain(id as number);
    // The job's runner directory holds its own runner's config, not a retired one's.
    const output = (await job(s, j.id)).output ?? "";
    expect(output).toContain(`"agentId":${agents.at(-1)},`);
  }, 60_000);
});

describe("a stop while a retired runner is replaced", () => {
  test.concurrent("the new runner is not started; the slot exits 0 having deleted it, its VM and nothing else", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    // The replacement's JIT call (the second) answers 5 s late (time for a loaded machine to see it asked for and signal; the stop waits for the answer): armed before the loop starts, so it meets it however soon GitHub retires the first runner.
    await world.gh.fault({ path: `/orgs/${s.org}/actions/runners/generate-jitconfig`, latencyMs: 5_000, skip: 1 });
    const run = loopBinary(s);
    // The VM's first runner is named as the VM; a replacement's name differs. (On a loaded machine the first runner
    // may be retired before it even listens: the replacement comes all the same.)
    let vm = "";
    const pending = await until("the replacement asked for", () => {
      const st = slotState(s);
      vm = st?.vm as string;
      return st?.phase === "token" && st.runner_name !== undefined && st.runner_name !== vm && (st.runner_name as string);
    }, 30_000, 50);
    run.child.kill("SIGTERM");
    const lines = await exitOf(run, 0);
    expect(events(lines, "runner.replaced")).toEqual([]);
    // Only the VM's first runner can have listened: the replacement never started.
    expect(events(lines, "run.ready").filter((l) => l.runner !== vm)).toEqual([]);
    // The stop took the new runner off GitHub (GitHub may have retired it first: then that answered 404).
    expect(count((await github(s)).calls, "DELETE")).toBeGreaterThanOrEqual(1);
    expect(lines.some((l) => l.event === "cleanup.runner_removed" && l.runner === pending), logText(lines)).toBe(true);
    await nothingLeft(s, 20_000, lines);
  }, 60_000);
});

describe("an idle VM is not kept forever", () => {
  test.concurrent("after vm.idle_reuse_max the next retirement ends the cycle; the next cycle uses a new VM", async () => {
    // Long enough for the first retirement (2.5 s after the runner registered, ~4 s into the cycle) to come before it.
    const s = slots(world, { vm: { idle_reuse_max: "7s" } }, { boot_ms: 150 });
    const first = await exitOf(loopBinary(s), 0);
    const retired = events(first, "runner.retired");
    expect(retired.length, logText(first)).toBe(1);
    expect(retired[0]!.msg).toContain("vm.idle_reuse_max");
    // Runners were replaced while the VM was younger than the bound (how many depends on the machine's speed).
    expect(retired[0]!.vm_runners).toBe(events(first, "runner.replaced").length + 1);
    const firstVm = events(first, "cycle.start")[0]!.vm;

    const j = await enqueue(s, "fresh");
    const second = await exitOf(loopBinary(s), 0);
    expect((await job(s, j.id)).result).toBe("Succeeded");
    expect(events(second, "cycle.start")[0]!.vm).not.toBe(firstVm);
  }, 60_000);

  test.concurrent("a newly pinned image: the next retirement ends the cycle", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const run = loopBinary(s);
    await until("runner listening", () => events(run.lines(), "run.ready").length > 0, 20_000);
    // pull pins the tag's digest (any digest other than what the VM was cloned from).
    const pinnedAt = new Date().toISOString();
    writeImageLock(s.stateDir, { ref: s.config.image.ref, digest: `sha256:${"1".repeat(64)}`, pinned_at: pinnedAt });
    const lines = await exitOf(run, 0);
    // A retirement before the pin (a slow machine) still gets a new runner; none after it.
    for (const l of events(lines, "runner.replaced")) expect(l.time < pinnedAt).toBe(true);
    expect(events(lines, "runner.retired")[0]!.msg).toContain("another image is pinned");
    expect(events(lines, "cycle.done")[0]!.outcome).toBe("no-job");
  }, 60_000);

  test.concurrent("vm.reuse_idle: false: a retirement ends the cycle (a new VM each time)", async () => {
    const s = slots(world, { vm: { reuse_idle: false } }, { boot_ms: 150 });
    const lines = await exitOf(loopBinary(s), 0);
    expect(events(lines, "runner.replaced")).toEqual([]);
    expect(events(lines, "runner.retired")[0]!.msg).toContain("vm.reuse_idle is off");
    expect(count((await github(s)).calls, "generate-jitconfig")).toBe(1);
    expect(vms(s).filter((v) => v.running).length).toBeLessThanOrEqual(1);
  }, 60_000);
});

describe("vm.start: snapshot", () => {
  test.concurrent("a restored VM whose runner was retired gets a new runner, not a new restore", async () => {
    const s = slots(world, { vm: { start: "snapshot" } }, { boot_ms: 150 });
    const run = loopBinary(s);
    await until("2 runners replaced", () => replacedIn(run.lines()) >= 2, 40_000, 100);
    const j = await enqueue(s, "on-restored");
    const lines = await exitOf(run, 0);
    expect((await job(s, j.id)).result).toBe("Succeeded");
    expect(events(lines, "snapshot.restored").length).toBe(1);
    expect(events(lines, "cycle.start").length).toBe(1);
    expect(events(lines, "cycle.done")[0]!.vm_runners).toBe(events(lines, "runner.replaced").length + 1);
  }, 60_000);
});

describe("a crash while a retired runner is replaced", () => {
  test.concurrent("killed after the new runner was made but before its answer came: the next start removes the VM and that runner, then serves the job", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const run = loopBinary(s);
    await until("first runner listening", () => events(run.lines(), "run.ready").length > 0, 20_000);
    const vm = slotState(s)!.vm as string;
    // GitHub makes the replacement but holds its answer: the loop is killed waiting for it.
    await world.gh.fault({ path: `/orgs/${s.org}/actions/runners/generate-jitconfig`, latencyMs: 30_000, count: 1 });
    const pending = await until("the replacement's name recorded and made on GitHub", async () => {
      const st = slotState(s)!;
      const name = st.runner_name as string | undefined;
      return st.phase === "token" && name !== undefined && name !== vm && (await github(s)).runners.some((r) => r.name === name) && name;
    }, 20_000, 50);
    run.child.kill("SIGKILL");
    await run.done;
    expect(slotState(s)!.runner_id).toBeUndefined();

    const j = await enqueue(s, "after-crash");
    const lines = await exitOf(loopBinary(s), 0);
    expect(events(lines, "recover.start")[0]).toMatchObject({ vm, runner: pending });
    expect((await job(s, j.id)).result).toBe("Succeeded");
    expect(events(lines, "cycle.start")[0]!.vm).not.toBe(vm);
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
    expect((await github(s)).runners.map((r) => r.name)).not.toContain(pending);
  }, 60_000);
});
