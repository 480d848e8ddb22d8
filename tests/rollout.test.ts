// A golden image rollout end to end: the compiled `loop` serves jobs on v1;
// v2 is pushed and the compiled `pull` picks it up while a job runs; later
// cycles clone v2 (their job checks the file only v2 has); no job fails or
// waits for the pull; v1 stays cached while a slot's VM comes from it and is
// pruned after; `pull --rollback` pins the previous image for the following
// cycles, and a later pull does not undo it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { readImageLock } from "../lib/image/pin.ts";
import { IMAGE_MARKER } from "../sim/image/fixture.ts";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, events, loop, slotState, start, until, worldEnv } from "./helpers/e2e.ts";

let world: World;
let cfg: string;
let stateDir: string;

beforeAll(async () => {
  ensureBinaries(["loop", "pull"]);
  // A stopped VM's place frees in 0.1 s, not 1 s: a new pin discards the VM started ahead, and the next one waits for its place.
  world = await startWorld({ registry: "required", tart: { boot_ms: 150, place_release_ms: 100 } });
  stateDir = join(world.dir, "rollout", "state");
  cfg = world.writeConfig({ image: { min_free_gb: 1 }, host: { state_dir: stateDir, log_dir: join(world.dir, "rollout", "logs") } }, "rollout.yml");
});
afterAll(async () => {
  await world?.stop();
});

const pull = (...args: string[]) => start(world, "pull", ["--config", cfg, ...args]).done;
const pinned = () => readImageLock(stateDir)!;
const cached = () => {
  const r = spawnSync("tart", ["list", "--source", "oci", "--format", "json"], { env: worldEnv(world), encoding: "utf8" });
  return (JSON.parse(r.stdout) as { Name: string }[]).map((e) => e.Name.split("@")[1]).filter(Boolean);
};

/** The job checks which image its VM came from: v1 has no marker file, later versions name themselves in it. */
const checks = (version: string) =>
  version === "v1" ? `test ! -e "$HOME/${IMAGE_MARKER}" && echo on v1` : `test "$(cat "$HOME/${IMAGE_MARKER}")" = ${version} && echo on ${version}`;

/** One cycle of a slot serving one job that checks its image; returns the digest the VM was cloned from. */
async function cycle(slot: number, version: string): Promise<string> {
  const job = await world.gh.enqueueJob({ name: `on-${version}-${slot}`, script: checks(version) });
  const r = await loop(world, cfg, slot);
  expect(r.code).toBe(0);
  const done = await world.gh.job(job.id);
  expect([done.result, done.attempts]).toEqual(["Succeeded", 1]);
  return events(r.lines, "cycle.start")[0]!.image as string;
}

test("v1 -> v2 (picked up while a job runs) -> v3 -> rollback to v2; v1 pruned once no VM uses it", async () => {
  // v1: the world's image, pinned by a first pull.
  expect((await pull()).code).toBe(0);
  const v1 = pinned().digest;
  expect(await cycle(2, "v1")).toBe(v1);

  // A long job on slot 1, on v1, holds its VM until released.
  const release = join(world.dir, "release-slot-1");
  const long = await world.gh.enqueueJob({ name: "long-on-v1", script: `while [ ! -e ${release} ]; do sleep 0.1; done; ${checks("v1")}` });
  const slot1 = start(world, "loop", ["--slot", "1", "--config", cfg]);
  await until("the long job to run on slot 1", async () => (await world.gh.job(long.id)).status === "in_progress");
  expect(slotState(stateDir, 1)?.image).toBe(v1);

  // v2 is pushed; a slow pull (1 s a blob: some 3 s) runs while slot 2 serves a whole cycle on v1: no slot waits for it.
  const { digest: v2 } = await world.publishVersion({ marker: "v2", runnerVersion: "2.330.0" });
  world.setTart({ boot_ms: 150, pull_ms: 1000 });
  const pulling = pull();
  let pullDone = false;
  void pulling.then(() => (pullDone = true));
  expect(await cycle(2, "v1")).toBe(v1);
  expect(pullDone).toBe(false);
  const pulled = await pulling;
  world.setTart({ boot_ms: 150, pull_ms: 0 });
  expect(pulled.code).toBe(0);
  expect(pinned()).toMatchObject({ digest: v2, runner_version: "2.330.0", previous: { digest: v1 } });
  expect((await world.gh.job(long.id)).status).toBe("in_progress");

  // The next cycles clone v2.
  expect(await cycle(2, "v2")).toBe(v2);

  // v3: v1 is neither pinned nor previous, but slot 1's VM comes from it: kept.
  const { digest: v3 } = await world.publishVersion({ marker: "v3" });
  const third = await pull();
  expect(third.code).toBe(0);
  expect(pinned()).toMatchObject({ digest: v3, previous: { digest: v2 } });
  expect(events(third.lines, "prune.kept")[0]?.msg).toContain("the VM of slot 1 comes from it");
  expect(cached()).toContain(v1);
  expect(await cycle(2, "v3")).toBe(v3);

  // The long job ends (it ran on v1 throughout); the next pull prunes v1.
  writeFileSync(release, "");
  const first = await slot1.done;
  expect(first.code).toBe(0);
  expect((await world.gh.job(long.id)).result).toBe("Succeeded");
  const after = await pull();
  expect(events(after.lines, "prune.deleted").map((l) => l.digest)).toEqual([v1]);
  expect(cached().sort()).toEqual([v2, v3].sort());

  // Rollback: v2 again for the following cycles; a periodic pull does not undo it while the tag stays at v3.
  const back = await pull("--rollback");
  expect(back.code).toBe(0);
  expect(pinned()).toMatchObject({ digest: v2, previous: { digest: v3 }, rolled_back: { digest: v3 } });
  expect(await cycle(1, "v2")).toBe(v2);
  const periodic = await pull();
  expect(periodic.code).toBe(0);
  expect(events(periodic.lines, "pull.rolled-back")).toHaveLength(1);
  expect(pinned().digest).toBe(v2);
  expect(await cycle(2, "v2")).toBe(v2);

  // Every job ran once and succeeded; nothing left behind.
  const s = await world.gh.state();
  expect(s.jobs.every((j) => j.result === "Succeeded" && j.attempts === 1)).toBe(true);
  expect(s.runners).toEqual([]);
}, 180_000);
