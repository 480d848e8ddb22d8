// `status`, the compiled binary: crafted state files in each slot state, the
// runner list from GitHub, and a live loop it reads without disturbing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../lib/config/index.ts";
import { createGitHubClient } from "../lib/github/client.ts";
import { deleteRunner, generateJitConfig } from "../lib/github/runners.ts";
import { machineId, newName } from "../lib/config/names.ts";
import { createLogger } from "../lib/core/log.ts";
import { PassThrough } from "node:stream";
import type { StatusReport } from "../lib/host/status.ts";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, slotState, start, until } from "./helpers/e2e.ts";

/** The host part of names with no host.id and nothing pinned: the machine's id (here /etc/machine-id), not the hostname. */
const HOST = machineId()!.id;

let world: World;
let n = 0;

beforeAll(async () => {
  ensureBinaries(["status", "loop"]);
  world = await startWorld({ registry: "required", tart: { boot_ms: 150 } });
});

afterAll(async () => {
  await world?.stop();
});

/** A config with its own state dir, holding the given slot files (objects as JSON, strings as they are). */
function withStates(states: Record<number, object | string>): { config: string; stateDir: string } {
  const stateDir = join(world.dir, `status-${++n}`, "state");
  mkdirSync(stateDir, { recursive: true });
  for (const [slot, s] of Object.entries(states)) writeFileSync(join(stateDir, `slot-${slot}.json`), typeof s === "string" ? s : JSON.stringify(s));
  return { config: world.writeConfig({ host: { state_dir: stateDir, log_dir: join(world.dir, `status-${n}`, "logs") } }, `status-${n}.yml`), stateDir };
}

async function status(config: string, ...args: string[]) {
  return statusOn({}, config, ...args);
}

/** `status` with a host's env (its own TART_HOME) over the world's. */
async function statusOn(env: Record<string, string>, config: string, ...args: string[]) {
  const r = await start(world, "status", ["--config", config, ...args], env).done;
  return { ...r, json: args.includes("--json") ? (JSON.parse(r.stdout) as StatusReport) : undefined };
}

const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();
const DIGEST = `sha256:${"ab12".repeat(16)}`;
const rowOf = (text: string, slot: number) => text.split("\n").find((l) => l.startsWith(`${slot} `)) ?? "";

describe("status from state files", () => {
  test.concurrent("idle and booting: phase, time in phase, VM and runner, served count; text and JSON agree", async () => {
    const vm = newName("sim", 2, HOST);
    const { config } = withStates({
      1: { version: 1, slot: 1, phase: "idle", phase_since: ago(300), updated_at: ago(300), ghosts: [], failures: 0, jobs_served: 4, last_job_at: ago(300) },
      2: { version: 1, slot: 2, phase: "boot", phase_since: ago(12), updated_at: ago(12), vm, runner_name: vm, runner_id: 42, ghosts: [], failures: 0, jobs_served: 0, path: "cold", image: `127.0.0.1:5000/macos-runner@${DIGEST}` },
    });
    const text = await status(config);
    expect(text.code).toBe(0);
    expect(rowOf(text.stdout, 1)).toMatch(/^1\s+idle\s+5m0\ds\s+-\s+-\s+-\s+4\s+-/);
    expect(rowOf(text.stdout, 2)).toMatch(new RegExp(`^2\\s+boot\\s+1\\ds\\s+${vm} \\(not running\\)\\s+#42\\s+-\\s+0\\s+-\\s+sha256:ab12ab12ab12$`));

    const { json } = await status(config, "--json");
    const [one, two] = json!.slots as Extract<StatusReport["slots"][number], { state: "ok" }>[];
    expect([one!.phase, one!.jobs_served, one!.in_phase_s! >= 300 && one!.in_phase_s! < 320]).toEqual(["idle", 4, true]);
    expect([two!.phase, two!.vm, two!.runner_id, two!.vm_running, two!.image]).toEqual(["boot", vm, 42, false, `127.0.0.1:5000/macos-runner@${DIGEST}`]);
    expect(json!.vms.filter((v) => v.name.startsWith("sim-"))).toEqual([]);
  });

  test.concurrent("running a job, backing off, recovering with a ghost; a never-run slot; nothing written", async () => {
    const vm = newName("sim", 1, HOST);
    const { config, stateDir } = withStates({
      1: { version: 1, slot: 1, phase: "job", phase_since: ago(185), vm, runner_name: vm, runner_id: 7, job: "build-ios #7", ghosts: [], failures: 0, jobs_served: 12 },
      2: { version: 1, slot: 2, phase: "backoff", phase_since: ago(5), failures: 3, backoff_until: new Date(Date.now() + 90_000).toISOString(), last_error: "tart ip failed (VM x): no IP address found", last_failure_at: ago(5), ghosts: [], jobs_served: 3 },
    });
    const before = readdirSync(stateDir).map((f) => [f, statSync(join(stateDir, f)).mtimeMs]);
    const text = await status(config);
    expect(rowOf(text.stdout, 1)).toMatch(new RegExp(`^1\\s+job\\s+3m0\\ds\\s+${vm} \\(not running\\)\\s+#7\\s+build-ios #7\\s+12\\s+-`));
    expect(rowOf(text.stdout, 2)).toMatch(/^2\s+backoff\s+\ds\s+-\s+-\s+-\s+3\s+3 in a row; backoff 1m[23]\ds more; tart ip failed \(VM x\): no IP address found/);
    expect(readdirSync(stateDir).map((f) => [f, statSync(join(stateDir, f)).mtimeMs])).toEqual(before);

    const ghostVm = newName("sim", 1, HOST);
    const recovering = withStates({
      1: { version: 1, slot: 1, phase: "recover", phase_since: ago(2), vm: ghostVm, ghosts: [{ id: 99, name: ghostVm, since: ago(600) }], failures: 1, jobs_served: 0 },
    });
    const r = await status(recovering.config);
    expect(rowOf(r.stdout, 1)).toMatch(/^1\s+recover\s+\ds/);
    expect(rowOf(r.stdout, 2)).toMatch(/^2\s+-\s+-\s+.*never ran \(no state file\)/);
    expect(r.stdout).toContain(`slot 1: ghost runner 99 ${ghostVm} still busy on GitHub`);
    const { json } = await status(recovering.config, "--json");
    expect(json!.slots[1]).toEqual({ slot: 2, state: "never-ran" });
  });

  test.concurrent("a VM serving a replacement for retired idle runners: the runner's place on the VM, in text and JSON", async () => {
    const vm = newName("sim", 1, HOST);
    const runner = newName("sim", 1, HOST);
    const { config } = withStates({
      1: { version: 1, slot: 1, phase: "run", phase_since: ago(30), vm, runner_name: runner, runner_id: 51, vm_runners: 3, ghosts: [], failures: 0, jobs_served: 2 },
      2: { version: 1, slot: 2, phase: "run", phase_since: ago(30), vm: runner, runner_name: runner, runner_id: 52, vm_runners: 1, ghosts: [], failures: 0, jobs_served: 2 },
    });
    const text = await status(config);
    expect(rowOf(text.stdout, 1)).toMatch(new RegExp(`^1\\s+run\\s+3\\ds\\s+${vm} \\(not running\\)\\s+#51 ${runner} \\(3rd on VM\\)\\s+-\\s+2`));
    // A fresh VM's first runner: nothing added.
    expect(rowOf(text.stdout, 2)).toMatch(new RegExp(`#52\\s+-\\s+2`));
    const { json } = await status(config, "--json");
    expect(json!.slots.map((s) => (s as { vm_runners?: number }).vm_runners)).toEqual([3, 1]);
  });

  test.concurrent("a damaged state file is reported, not fatal; --slot shows one slot", async () => {
    const { config } = withStates({ 1: "{ half a fi", 2: { slot: 2, phase: "sleeping", failures: "many" } });
    const r = await status(config);
    expect(r.code).toBe(0);
    expect(rowOf(r.stdout, 1)).toMatch(/^1\s+\?.*state unreadable: .*slot-1\.json is not JSON/);
    expect(rowOf(r.stdout, 2)).toMatch(/^2\s+unknown/);
    expect(r.stdout).toContain('slot 2: state file: phase "sleeping" is not one of idle, recover');
    expect(r.stdout).toContain("slot 2: state file: failures is not a count");
    const one = await status(config, "--slot", "2", "--json");
    expect(one.json!.slots.map((s) => s.slot)).toEqual([2]);
  });

  test.concurrent("--github lists only this host's runners, each with the slot that knows it", async () => {
    const cfg = loadConfig({ path: world.writeConfig() });
    const gh = createGitHubClient(cfg.github, { stateDir: join(world.dir, "status-gh"), log: createLogger({ stream: new PassThrough() }) });
    const make = (name: string) => generateJitConfig(gh, { name, group: "Default", labels: ["self-hosted"], workFolder: "_work" }).then((j) => j.runner);
    const current = await make(newName("sim", 1, HOST));
    const ghost = await make(newName("sim", 2, HOST));
    const stray = await make(newName("sim", 2, HOST));
    const otherHost = await make(newName("sim", 1, "other-mac"));
    try {
      const { config } = withStates({
        1: { version: 1, slot: 1, phase: "run", vm: current.name, runner_name: current.name, runner_id: current.id, ghosts: [], failures: 0, jobs_served: 0 },
        2: { version: 1, slot: 2, phase: "idle", ghosts: [{ id: ghost.id, name: ghost.name }], failures: 0, jobs_served: 0 },
      });
      const { json, code } = await status(config, "--github", "--json");
      expect(code).toBe(0);
      expect(json!.runners!.map((r) => [r.name, r.seen_by]).sort()).toEqual(
        [[current.name, "slot 1"], [ghost.name, "slot 2 ghost"], [stray.name, "unknown"]].sort(),
      );
      const text = await status(config, "--github");
      expect(text.stdout).toMatch(new RegExp(`${stray.id}\\s+${stray.name}\\s+offline\\s+idle\\s+unknown`));
      expect(text.stdout).not.toContain(otherHost.name);
      // Bad credentials: the table still prints, the exit code says what went wrong.
      const wrongApp = world.writeConfig({ github: { app: { id: 999 } }, host: { state_dir: join(world.dir, "status-gh", "state") } }, "status-wrong-app.yml");
      const failed = await status(wrongApp, "--github");
      expect(failed.code).toBe(78);
      expect(failed.stdout).toMatch(/GitHub runners: .*401/);
    } finally {
      for (const r of [current, ghost, stray, otherHost]) await deleteRunner(gh, r.id);
    }
  });
});

test.concurrent("against a live loop: the VM it boots shows running under slot 1, then the slot settles to done", async () => {
  // A host and a runner prefix of its own: the VMs and runners this loop leaves
  // behind (the next VM it readies) are not in the other tests' tart list or runner list.
  const host = world.addHost("status-live");
  const stateDir = join(world.dir, "status-live", "state");
  const config = world.writeConfig({
    runner: { name_prefix: "live" },
    host: { state_dir: stateDir, log_dir: join(world.dir, "status-live", "logs"), dhcp_leases_path: host.leasesPath },
  }, "status-live.yml");
  // The job runs until the test has seen it run: no window a slow poll could miss.
  const release = join(world.dir, "status-live", "release");
  const job = await world.gh.enqueueJob({ name: "live-status", script: `while [ ! -e ${release} ]; do sleep 0.1; done; echo done` });
  const run = start(world, "loop", ["--slot", "1", "--config", config], host.env);
  // The held job keeps the slot in "job" on a running VM until released: status is asked from then on, not every
  // poll of the boot (each a compiled binary's start), and it must see what the state file and tart say.
  await until("the slot's state file to say its job runs", () => slotState(stateDir)?.phase === "job", 30_000);
  const seen = await until("status to show the slot running its VM", async () => {
    const { json } = await statusOn(host.env, config, "--json");
    const s = json!.slots[0]!;
    return s.state === "ok" && s.phase === "job" && s.vm_running === true && json!.vms.some((v) => v.name === s.vm && v.running && v.owner === "slot 1") && s;
  }, 10_000, 250);
  expect(seen.state === "ok" && seen.runner_id).toBeGreaterThan(0);
  writeFileSync(release, "");
  const done = await run.done;
  expect(done.code).toBe(0);
  expect((await world.gh.job(job.id)).result).toBe("Succeeded");
  const after = await statusOn(host.env, config);
  expect(rowOf(after.stdout, 1)).toMatch(/^1\s+done\s/);
  expect(slotState(stateDir)?.phase).toBe("done");
}, 60_000);
