// Every wait on the guest has a deadline: a runner that never listens, and a
// runner that reported its job but never exits, both end in bounded time.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exitCode } from "../../lib/core/errors.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, exitOf, fileWorld, github, job, loopBinary, loopInProcess, slots, slotState, start, until, vms } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

test.concurrent("a runner that never prints 'Listening for Jobs': ended after runner.listen_timeout, exit 83, cleaned", async () => {
  const s = slots(world, { runner: { listen_timeout: "1500ms" } }, { boot_ms: 150, runner_start_ms: 60_000 });
  const started = Date.now();
  const lines = await exitOf(loopBinary(s), exitCode("timeout"));
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(events(lines, "run.done")[0]!.msg).toContain("runner.listen_timeout");
  await until("no VM running, no runner", async () => vms(s).every((v) => !v.running) && (await github(s)).runners.length === 0, 20_000);
}, 60_000);

test.concurrent("a runner that reported its job but never exits: ssh-run ends after runner.exit_timeout, exit 83", async () => {
  const s = slots(world, { runner: { exit_timeout: "1s" } }, { boot_ms: 150 });
  const j = await enqueue(s, "then-hangs");
  const step = (cmd: string, ...args: string[]) => start(world, cmd, ["--slot", "1", "--config", s.path, ...args], s.host.env).done;
  const vm = (await step("clone")).stdout.trim();
  const ip = (await step("boot", "--vm", vm)).stdout.trim();
  expect((await step("token", "--output", join(s.stateDir, "jit.json"))).code).toBe(0);
  // After its job the runner closes its session; GitHub holds that answer, so the runner waits.
  await world.gh.fault({ method: "DELETE", path: /^\/_broker\/sessions\/[^/]+$/, latencyMs: 60_000, count: 1 });
  const ran = start(world, "ssh-run", ["--slot", "1", "--config", s.path, "--vm", vm, "--ip", ip], s.host.env);
  ran.child.stdin!.end(readFileSync(join(s.stateDir, "jit.json")));
  const r = await ran.done;
  expect(r.code).toBe(exitCode("timeout"));
  expect((await job(s, j.id)).result).toBe("Succeeded");
  expect(events(r.lines, "run.done")[0]!.msg).toContain("runner.exit_timeout");
  expect((await step("cleanup", "--vm", vm)).code).toBe(0);
}, 60_000);

test.concurrent("a job that outruns runner.job_timeout is cut: exit 83 naming the deadline, the VM cleaned", async () => {
  const s = slots(world, { runner: { job_timeout: "1500ms" } }, { boot_ms: 150 });
  const j = await enqueue(s, "forever", "sleep 60");
  const lines = await exitOf(loopInProcess(s), exitCode("timeout"));
  expect(events(lines, "run.done")[0]!.msg).toContain("runner.job_timeout");
  expect((await job(s, j.id)).status).not.toBe("queued");
  await until("no VM running", () => vms(s).every((v) => !v.running));
}, 60_000);

test.concurrent("a restart during a persisted backoff waits out what is left of it, no more and no less", async () => {
  const s = slots(world, { host: { backoff_initial: "3s", backoff_max: "3s" } }, { boot_ms: 150, faults: [{ kind: "clone_disk_full" }] });
  const first = loopBinary(s);
  const until_ = await until("backing off", () => slotState(s)?.phase === "backoff" && (slotState(s)!.backoff_until as string), 30_000, 20);
  first.child.kill("SIGKILL");
  await first.done;
  const j = await enqueue(s, "after-the-backoff");
  const second = loopInProcess(s);
  await until("served", async () => (await job(s, j.id)).result === "Succeeded", 30_000);
  second.stop.request();
  const lines = await exitOf(second, 0);
  const wait = events(lines, "backoff.wait")[0]!;
  expect(Number(wait.wait_ms)).toBeGreaterThan(0);
  expect(Number(wait.wait_ms)).toBeLessThanOrEqual(3000);
  expect(Date.parse(events(lines, "cycle.start")[0]!.time)).toBeGreaterThanOrEqual(Date.parse(until_) - 50);
}, 60_000);
