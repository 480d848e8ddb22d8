// `ssh-run`, the compiled binary, against the simulated world: how it ends a
// run that can never get a job. Assertions are on the world: which runner
// holds the session, which ran the job.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, events, start, until } from "./helpers/e2e.ts";

let world: World;

beforeAll(async () => {
  ensureBinaries(["clone", "boot", "token", "ssh-run"]);
  world = await startWorld({ registry: "required", tart: { boot_ms: 150 } });
});

afterAll(async () => {
  await world?.stop();
});

test("a second listener for the same runner ends at once as no-job (exit 81); the first keeps the session and runs the job", async () => {
  const path = world.writeConfig({ host: { state_dir: join(world.dir, "conflict", "state"), log_dir: join(world.dir, "conflict", "logs") } }, "conflict.yml");
  const args = ["--slot", "1", "--config", path];
  const vm = (await start(world, "clone", args).done).stdout.trim();
  const ip = (await start(world, "boot", [...args, "--vm", vm]).done).stdout.trim();
  const jitFile = join(world.dir, "conflict-jit.json");
  expect((await start(world, "token", [...args, "--output", jitFile]).done).code).toBe(0);
  const jit = readFileSync(jitFile);
  const runnerName = (JSON.parse(jit.toString()) as { runner_name: string }).runner_name;

  const first = start(world, "ssh-run", [...args, "--vm", vm, "--ip", ip]);
  first.child.stdin?.end(jit);
  await until("the first listener's session", async () => (await world.gh.state()).runners.find((r) => r.name === runnerName && r.status === "online"));

  // The same JIT config again: the runner's session is taken. The real runner
  // retries for 240 s before it gives up; ssh-run must not wait for that.
  const started = Date.now();
  const second = start(world, "ssh-run", [...args, "--vm", vm, "--ip", ip]);
  second.child.stdin?.end(jit);
  const ended = await second.done;
  expect(ended.code).toBe(81);
  expect(Date.now() - started).toBeLessThan(20_000);
  expect(events(ended.lines, "run.done")[0]?.msg).toContain("another listener already holds this runner's session");

  expect(first.child.exitCode).toBeNull();
  const job = await world.gh.enqueueJob({ name: "after-conflict", script: "echo served" });
  expect((await first.done).code).toBe(0);
  expect(await world.gh.job(job.id)).toMatchObject({ result: "Succeeded", runner_name: runnerName, attempts: 1 });
}, 60_000);
