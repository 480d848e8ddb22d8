// Faults at the process boundary: a guest whose host key does not match, a
// tart exec session that drops, a runner killed in the guest. Each cycle ends
// in one named line with its documented exit code and cleans up once. Faults
// of tart, the VM and GitHub that need no real process are in tests/cycle/faults.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exitCode } from "../../lib/core/errors.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, gate, github, job, loopBinary, loopInProcess, signalGuest, slots, slotState, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld({ github: { lostRunnerBusyMs: 3000 } });
});
afterAll(() => world?.stop());

describe("the transport", () => {
  test.concurrent("vm.transport ssh, a guest whose host key does not match: refused, exit 84, cleaned", async () => {
    const known = join(world.dir, "wrong_known_hosts");
    writeFileSync(known, "macos-runner-guest ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n");
    const s = slots(world, { vm: { transport: "ssh", ssh: { known_hosts_path: known } } }, { boot_ms: 150, local_network: "granted" });
    const lines = await exitOf(loopBinary(s), exitCode("host-key"));
    expect(events(lines, "run.done")[0]!.outcome).toBe("host-key");
    await nothingLeftRunning(s);
  }, 30_000);
});

/** No runner, and no VM running but the next cycle's, which a healthy cycle starts as it ends. */
async function nothingLeftRunning(s: Slots): Promise<void> {
  const next = () => (slotState(s)?.next_vm as { name: string } | undefined)?.name;
  await until("no VM running (but the next cycle's) and no runner", async () => vms(s).every((v) => !v.running || v.name === next()) && (await github(s)).runners.length === 0, 20_000);
}

describe("the guest", () => {
  test.concurrent("the session (tart exec) drops mid-job while the VM is up: the job is left to finish and succeeds once", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const g = gate(s, "outlives-its-ssh");
    const j = await enqueue(s, "outlives-its-ssh", g.script("echo done"));
    const run = loopInProcess(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    const vm = slotState(s)!.vm as string;
    // Our tart exec client dies; the runner in the guest does not notice (harsher reading).
    expect(spawnSync("pkill", ["-KILL", "-f", `tart(/main\\.ts)? exec -i ${vm} `]).status).toBe(0);
    // The loop sees the session go while the job still runs; only then may the job end.
    await until("the session loss seen", () => events(run.lines, "run.session_lost").length > 0);
    g.open();
    await until("the job done", async () => (await job(s, j.id)).status === "completed", 30_000);
    expect((await job(s, j.id)).result).toBe("Succeeded");
    const lines = await exitOf(run, 0);
    expect(events(lines, "run.session_lost").map((e) => e.msg)).toEqual([expect.stringContaining(`the tart exec session to ${vm} dropped`)]);
    expect(events(lines, "job.lost")).toEqual([]);
    await nothingLeftRunning(s);
  }, 60_000);

  test.concurrent("the runner itself dies mid-job, its VM up: the job is reported lost (exit 82), not waited for as after an SSH drop", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const j = await enqueue(s, "its-runner-dies", "sleep 5; echo done");
    const run = loopInProcess(s);
    await until("the job running", () => slotState(s)?.phase === "job");
    expect(signalGuest(s, slotState(s)!.vm as string, /Runner\.Listener\.mjs run/, "SIGKILL")).toBe(1);
    const lines = await exitOf(run, exitCode("lost"));
    expect(events(lines, "recover.adopt")).toEqual([]);
    expect(events(lines, "job.lost")[0]).toMatchObject({ level: "error", job: "its-runner-dies" });
    expect(events(lines, "job.lost")).toHaveLength(1);
    expect((await job(s, j.id)).status).not.toBe("queued");
    // GitHub still calls the runner busy: a ghost for later cycles; its VM is off.
    expect((slotState(s)!.ghosts as { name: string }[]).map((g) => g.name)).toEqual([events(lines, "job.lost")[0]!.vm as string]);
    expect(vms(s).filter((v) => v.running)).toEqual([]);
  }, 30_000);

  test.concurrent("a runner that exits without a job: no-job, exit 81, cleaned, backed off", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const run = loopInProcess(s);
    await until("listening", () => events(run.lines, "run.ready").length > 0);
    // The listener dies of an unhandled error: run.sh maps it and exits, no job ran.
    expect(signalGuest(s, slotState(s)!.vm as string, /Runner\.Listener\.mjs run/, "SIGKILL")).toBe(1);
    const lines = await exitOf(run, exitCode("no-job"));
    expect(events(lines, "run.done")[0]!.outcome).toBe("no-job");
    expect(slotState(s)!.failures).toBe(1);
    await nothingLeftRunning(s);
  }, 30_000);
});
