// A runner that reported its job but never exits: ssh-run, the by-hand step
// on the compiled binary, ends it after runner.exit_timeout in real time. The
// other deadlines and the persisted backoff are in tests/cycle/deadlines.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exitCode } from "../../lib/core/errors.ts";
import type { World } from "../../sim/world.ts";
import { enqueue, events, fileWorld, job, slots, start } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

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
