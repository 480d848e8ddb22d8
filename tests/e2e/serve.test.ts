// Serving jobs: two launchd-driven slots of the compiled loop, the cold and
// next VM (next-vm) paths, GitHub retiring an idle runner, the credentials modes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderAgents } from "../../lib/host/launchd/render.ts";
import { startAgent } from "../../sim/launchd.ts";
import type { World } from "../../sim/world.ts";
import { BIN } from "../helpers/e2e.ts";
import { count, enqueue, events, exitOf, start, fileWorld, github, job, logLines, loopBinary, loopInProcess, nothingLeft, slots, slotState, until, vms } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

const DIRTY_CHECK = 'test ! -e "$HOME/left-by-previous-job" || { echo "dirty VM"; exit 1; }; touch "$HOME/left-by-previous-job"';

describe("steady state", () => {
  test.concurrent("two launchd-driven slots: every job once on a fresh VM, 1 API call per job once warm, nothing left after bootout", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    // Two jobs a slot on average: its first cycle, and one on the VM cloned while that job ran.
    const jobs = await Promise.all([1, 2, 3, 4].map((i) => enqueue(s, `build-${i}`, `${DIRTY_CHECK}; echo job ${i} ok`)));
    const agents = renderAgents({ binDir: BIN, configPath: s.path, slots: 2, logDir: s.logDir, stateDir: s.stateDir, jobTimeoutMs: s.config.runner.jobTimeoutMs, pull: false, pullIntervalS: 300 }).map((a) => {
      const path = join(world.dir, `${s.org}-${a.fileName}`);
      writeFileSync(path, a.xml);
      return startAgent(path, { env: s.env });
    });
    try {
      await until("all jobs done", async () => (await github(s)).jobs.every((j) => j.status === "completed"), 60_000, 100);
    } catch (err) {
      console.error(logLines(s).filter((l) => l.level !== "debug").slice(-60).map((l) => `${l.slot} ${l.level} ${l.event} ${l.msg ?? ""}`).join("\n"));
      throw err;
    } finally {
      await Promise.all(agents.map((a) => a.bootout()));
    }
    // As `install --remove` does after the bootout: a slot stopped between two cycles
    // left its finished VMs and its next VM for a next start that will not come.
    for (const slot of [1, 2]) expect((await start(world, "cleanup", ["--slot", String(slot), "--config", s.path], s.host.env).done).code).toBe(0);
    const gh = await github(s);
    expect(gh.jobs.map((j) => j.result)).toEqual(jobs.map(() => "Succeeded"));
    expect(new Set(gh.jobs.map((j) => j.runner_name)).size).toBe(jobs.length);
    expect(vms(s)).toEqual([]);
    expect(gh.runners).toEqual([]);
    expect(gh.violations).toEqual([]);

    const lines = logLines(s);
    const cycles = events(lines, "cycle.start").length;
    // One JIT runner per job, plus one per cycle the bootout stopped; a completed job
    // de-registers its own runner, so only the runners that ran no job cost a DELETE; the
    // first start of each slot sweeps its runners once; each slot fetches the installation
    // token at most once. Nothing else.
    const jit = count(gh.calls, "generate-jitconfig");
    expect(jit).toBeGreaterThanOrEqual(jobs.length);
    expect(jit).toBeLessThanOrEqual(cycles);
    expect(count(gh.calls, "DELETE")).toBe(jit - jobs.length);
    expect(count(gh.calls, "GET /orgs/{org}/actions/runners")).toBeLessThanOrEqual(2);
    expect(count(gh.calls, "access_tokens")).toBeLessThanOrEqual(2);
    expect(Object.values(gh.calls).reduce((a, b) => a + b, 0)).toBe(jit + count(gh.calls, "DELETE") + count(gh.calls, "GET /orgs/{org}/actions/runners") + count(gh.calls, "access_tokens"));
    // Every cycle after a slot's first ran on the VM cloned while the previous job ran.
    const paths = events(lines, "cycle.start").map((l) => l.path);
    expect(paths.filter((p) => p === "next-vm").length).toBeGreaterThanOrEqual(cycles - 2);
  }, 90_000);

  test.concurrent("a finished VM is forced off at once and deleted by the next cycle; the next VM waits for it", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const first = await enqueue(s, "first", "echo one");
    await exitOf(loopInProcess(s), 0);
    expect((await job(s, first.id)).result).toBe("Succeeded");
    const after1 = slotState(s)!;
    const finished = (after1.dispose as string[])[0]!;
    const pre = (after1.next_vm as { name: string }).name;
    // Between cycles the finished VM is off, and the next VM already boots for the next cycle (started ahead).
    await until("the next VM runs", () => vms(s).find((v) => v.name === pre)?.running);
    expect(vms(s).sort((a, b) => a.name.localeCompare(b.name))).toEqual([{ name: finished, running: false }, { name: pre, running: true }].sort((a, b) => a.name.localeCompare(b.name)));
    expect((after1.next_vm as { run?: { pid: number } }).run?.pid).toBeGreaterThan(0);
    expect((await github(s)).runners).toEqual([]);

    const second = await enqueue(s, "second", "echo two");
    const run = loopInProcess(s);
    await exitOf(run, 0);
    expect((await job(s, second.id)).runner_name).toBe(pre);
    expect(events(run.lines, "cycle.start")[0]!.path).toBe("next-vm");
    // It waited for the VM the first cycle had started, instead of starting it.
    expect(events(run.lines, "boot.attached").map((l) => l.pid)).toEqual([(after1.next_vm as { run: { pid: number } }).run.pid]);
    expect(vms(s).map((v) => v.name)).not.toContain(finished);

    // A stop deletes what is left: the last finished VM and the next VM.
    const third = loopInProcess(s);
    await until("runner listening", () => events(third.lines, "run.ready").length > 0);
    third.stop.request();
    expect((await third.done).code).toBe(0);
    await nothingLeft(s);
  }, 60_000);
});

describe("idle runner retired by GitHub", () => {
  // With vm.reuse_idle (the default) the VM gets a new runner instead: tests/e2e/idle.test.ts.
  test.concurrent("vm.reuse_idle off: 'no longer exists' ends the cycle cleanly: exit 0, no backoff, no DELETE, its VM off", async () => {
    const s = slots(world, { vm: { reuse_idle: false } }, { boot_ms: 150 });
    const run = loopInProcess(s);
    await until("runner listening", () => events(run.lines, "run.ready").length > 0);
    const st = slotState(s)!;
    await world.gh.retireRunner(st.runner_id as number);
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(events(r.lines, "cycle.done")[0]!.outcome).toBe("no-job");
    const after = slotState(s)!;
    expect(after.failures).toBe(0);
    expect(after.backoff_until).toBeUndefined();
    expect(count((await github(s)).calls, "DELETE")).toBe(0);
    // Only the next cycle's VM runs (started ahead); the retired runner's is off.
    // (Its `tart run` was just spawned: it shows as running once tart has taken the VM's lock.)
    const next = (after.next_vm as { name: string }).name;
    await until("only the next VM running", () => {
      const running = vms(s).filter((v) => v.running).map((v) => v.name);
      return running.length === 1 && running[0] === next;
    }, 10_000);
  }, 30_000);
});

describe("GitHub credentials", () => {
  test.concurrent("without installation_id the installation is looked up once, then cached on disk across restarts", async () => {
    const s = slots(world, { github: { app: { installation_id: null } } }, { boot_ms: 150 });
    for (let i = 0; i < 2; i++) {
      const j = await enqueue(s, `lookup-${i}`);
      expect((await loopBinary(s).done).code).toBe(0);
      expect((await job(s, j.id)).result).toBe("Succeeded");
    }
    expect(count((await github(s)).calls, "GET /orgs/{org}/installation")).toBe(1);
  }, 40_000);

  test.concurrent("a PAT instead of an app serves jobs too", async () => {
    const s = slots(world, { github: { app: null, token_path: world.patPath } }, { boot_ms: 150 });
    const j = await enqueue(s, "with-pat");
    expect((await loopInProcess(s).done).code).toBe(0);
    expect((await job(s, j.id)).result).toBe("Succeeded");
  }, 30_000);

  test.concurrent("an app without the runner permission: exit 78 and a message that names the permission", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    await world.gh.fault({ path: `/orgs/${s.org}/actions/runners/generate-jitconfig`, status: 403, body: { message: "Resource not accessible by integration" }, count: 1 });
    const r = await loopBinary(s).done;
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("organization_self_hosted_runners");
    await until("VM removed", () => vms(s).every((v) => !v.running));
    expect((await github(s)).runners).toEqual([]);
  }, 30_000);
});
