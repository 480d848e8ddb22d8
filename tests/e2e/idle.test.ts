// An idle slot at rest, on the compiled loop and the fake runner in a real
// guest: GitHub retires its idle runner every few seconds here
// (idleJitRunnerRetireMs), and the slot starts a new runner in the same VM;
// the runner in the reused VM sees neither the files nor the process of the
// one before, and a loop killed while it makes the new runner leaves nothing
// the next start does not remove. The rest of idle reuse (one VM and one JIT
// call per retirement, vm.idle_reuse_max, a new pin, vm.reuse_idle: false, a
// stop mid-replacement, snapshot start) is in tests/cycle/idle.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { LogLine } from "../../sim/logs.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, github, job, loopBinary, slots, slotState, until, vms, type Slots } from "./harness.ts";

/** GitHub's idle retirement, shortened: minutes on github.com. */
const RETIRE_MS = 1_500;

let world: World;
beforeAll(async () => {
  // A short session lease makes the sim check for idle runners every 500 ms, so a retirement comes on time.
  world = await fileWorld({ github: { idleJitRunnerRetireMs: RETIRE_MS, sessionLeaseMs: 2_000 } });
});
afterAll(() => world?.stop());

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
    const s = slots(world, {}, { boot_ms: 150, runner_start_ms: RETIRE_MS + 2_000 });
    const run = loopBinary(s);
    await until("a runner replaced", () => replacedIn(run.lines()) >= 1, 40_000, 100);
    const vm = slotState(s)!.vm as string;
    // The retired runner's exit, and what the next runner found at its start: nothing of the retired one.
    const starts = await until("the retired runner's exit and the next one's start", () => {
      const all = runnerStarts(s, vm);
      return all.length >= 2 && all[0]!.some((x) => x.event === "exit") && all;
    }, 20_000, 100);
    run.child.kill("SIGTERM");
    await run.done;
    for (const records of starts) expect(records[0]!.found, JSON.stringify(starts)).toEqual([]);
    // The real runner exits 1 ("Please reconfigure the runner") and leaves its files: only the guest command removed them.
    expect(starts[0]!.find((r) => r.event === "exit")!.rc).toBe(1);
    expect(events(run.lines(), "runner.runner-gone").length).toBeGreaterThan(0);
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

describe("a crash while a retired runner is replaced", () => {
  test.concurrent("killed after the new runner was made but before its answer came: the next start removes the VM and that runner, then serves the job", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    // GitHub makes the replacement (the slot's second runner) but holds its answer: the loop is
    // killed waiting for it. Armed before the loop starts: a retirement can come within 1.5 s.
    await world.gh.fault({ path: `/orgs/${s.org}/actions/runners/generate-jitconfig`, latencyMs: 30_000, skip: 1, count: 1 });
    const run = loopBinary(s);
    await until("first runner listening", () => events(run.lines(), "run.ready").length > 0, 20_000);
    const vm = slotState(s)!.vm as string;
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
