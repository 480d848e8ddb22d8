// Faults of tart, the VM, the guest and GitHub: each cycle fails in one named
// line with its documented exit code, cleans up once, and costs no runner or
// clone it did not need.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exitCode } from "../../lib/core/errors.ts";
import type { World } from "../../sim/world.ts";
import { count, enqueue, events, exitOf, fileWorld, github, job, loopBinary, loopInProcess, signalGuest, slots, slotState, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld({ github: { lostRunnerBusyMs: 3000 } });
});
afterAll(() => world?.stop());

const tart = (s: Slots, ...args: string[]) => spawnSync(s.config.host.tartPath, args, { env: s.env, encoding: "utf8" });

describe("tart and the VM", () => {
  test.concurrent("a VM that fails to start: seen at once, no runner made, cleaned up, exit 1", async () => {
    const s = slots(world, {}, { boot_ms: 150, faults: [{ kind: "start_failure" }] });
    const lines = await exitOf(loopBinary(s), exitCode("failure"));
    expect(events(lines, "cycle.failed")[0]!.msg).toContain("virtual machine failed to start");
    expect(count((await github(s)).calls, "generate-jitconfig")).toBe(0);
    expect(vms(s).filter((v) => v.running)).toEqual([]);
  }, 30_000);

  test.concurrent("the 2-VM limit: named in one line, no runner and no clone spent per retry, served once a VM place frees up", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    // Two VMs that are not ours hold the host's two places.
    const others = ["someone-a", "someone-b"];
    for (const name of others) expect(tart(s, "clone", s.config.image.ref, name, "--insecure").status).toBe(0);
    const runs = others.map((name) => spawnSync("sh", ["-c", `${s.config.host.tartPath} run --no-graphics ${name} >/dev/null 2>&1 & echo $!`], { env: s.env, encoding: "utf8" }).stdout.trim());
    await until("both running", () => (JSON.parse(tart(s, "list", "--format", "json").stdout) as { Running: boolean }[]).filter((v) => v.Running).length === 2);
    for (let attempt = 0; attempt < 2; attempt++) {
      const lines = await exitOf(loopBinary(s), exitCode("tempfail"));
      expect(events(lines, "cycle.failed")[0]!.msg).toContain("another VM is running on this host: someone-a, someone-b");
    }
    const gh = await github(s);
    expect(count(gh.calls, "generate-jitconfig")).toBe(0);
    // One clone for both attempts: the untouched VM is kept for the next try.
    const ours = vms(s);
    expect(ours.length).toBe(1);
    expect(slotState(s)!.next_vm).toMatchObject({ name: ours[0]!.name });
    for (const pid of runs) process.kill(Number(pid), "SIGKILL");
    const j = await enqueue(s, "after-the-limit");
    const served = loopInProcess(s);
    await until("served", async () => (await job(s, j.id)).result === "Succeeded", 30_000);
    served.stop.request();
    await exitOf(served, 0);
  }, 60_000);

  test.concurrent("a VM that never gets an address: boot_timeout, cleaned up once, exit 1", async () => {
    const s = slots(world, { vm: { boot_timeout: "2s" } }, { boot_ms: 150, faults: [{ kind: "no_ip" }] });
    const lines = await exitOf(loopBinary(s), exitCode("failure"));
    expect(events(lines, "cycle.failed")[0]!.msg).toContain("got no address within vm.boot_timeout");
    // One cleanup: one DELETE of the runner made while the VM booted, one stop and delete of the VM.
    expect(events(lines, "cleanup.done").length).toBe(1);
    expect(events(lines, "cleanup.vm").length).toBe(1);
    expect(count((await github(s)).calls, "DELETE")).toBe(count((await github(s)).calls, "generate-jitconfig"));
    await until("no VM running", () => vms(s).every((v) => !v.running));
    expect((await github(s)).runners).toEqual([]);
  }, 30_000);

  test.concurrent("clone fails (disk full): logged, failure and backoff persisted, no runner made, exit 1", async () => {
    const s = slots(world, {}, { boot_ms: 150, faults: [{ kind: "clone_disk_full" }] });
    const lines = await exitOf(loopBinary(s), exitCode("failure"));
    expect(events(lines, "cycle.failed")[0]!.msg).toContain("No space left on device");
    const st = slotState(s)!;
    expect([st.failures, typeof st.backoff_until]).toEqual([1, "string"]);
    expect(count((await github(s)).calls, "generate-jitconfig")).toBe(0);
  }, 30_000);

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
    const j = await enqueue(s, "outlives-its-ssh", "sleep 3; echo done");
    const run = loopInProcess(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    const vm = slotState(s)!.vm as string;
    // Our tart exec client dies; the runner in the guest does not notice (harsher reading).
    expect(spawnSync("pkill", ["-KILL", "-f", `tart(/main\\.ts)? exec -i ${vm} `]).status).toBe(0);
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

describe("GitHub", () => {
  test.concurrent("5xx and a secondary rate limit while making the runner: retried, the job runs once", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const path = `/orgs/${s.org}/actions/runners/generate-jitconfig`;
    await world.gh.fault({ path, status: 502, count: 2 });
    await world.gh.fault({ path, rateLimited: "secondary", retryAfter: 1, count: 1 });
    const j = await enqueue(s, "after-retries");
    const run = loopInProcess(s);
    await until("served", async () => (await job(s, j.id)).result === "Succeeded", 50_000);
    run.stop.request();
    const lines = await exitOf(run, 0);
    expect(events(lines, "token.retry").length + events(lines, "github.retry").length).toBeGreaterThanOrEqual(3);
    expect((await job(s, j.id)).attempts).toBe(1);
  }, 60_000);

  test.concurrent("a malformed 201 for the runner: exit 65 naming the missing field; the VM is cleaned", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    await world.gh.fault({ path: `/orgs/${s.org}/actions/runners/generate-jitconfig`, status: 201, body: { runner: { id: 1 } }, count: 1 });
    const lines = await exitOf(loopBinary(s), exitCode("bad-input"));
    expect(events(lines, "cycle.failed")[0]!.msg).toMatch(/does not have the documented shape.*runner\.name/);
    await until("no VM running", () => vms(s).every((v) => !v.running));
  }, 30_000);

  test.concurrent("an HTML error page: the log keeps the status and a short excerpt, not the page", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const page = `<html><head><title>502 Bad Gateway</title></head><body>${"<p>upstream sad</p>".repeat(2000)}</body></html>`;
    await world.gh.fault({ path: `/orgs/${s.org}/actions/runners/generate-jitconfig`, status: 502, body: page, count: 10 });
    const run = loopBinary(s);
    const lines = await exitOf(run, exitCode("tempfail"));
    const failed = events(lines, "cycle.failed")[0]!;
    expect(failed.msg).toContain("502");
    expect(JSON.stringify(failed).length).toBeLessThan(2000);
    expect(Math.max(...lines.map((l) => JSON.stringify(l).length))).toBeLessThan(2000);
  }, 60_000);
});
