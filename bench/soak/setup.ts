// The soak's world: one simulated Mac ("mini") with our two slots, and on
// the same org and the same tart home two neighbours that must stay
// untouched: one with another prefix, one whose prefix is ours plus a suffix
// (acme-mac2 beside acme-mac). Neighbours own stopped VMs in tart and
// registered runners on GitHub; they run no loop (they would take the
// host's two VM places).
import { spawnSync } from "node:child_process";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../../lib/config/index.ts";
import { renderAgents } from "../../lib/host/launchd/render.ts";
import { startAgent, type Agent, type AgentOptions } from "../../sim/launchd.ts";
import { startWorld, type SimHost, type World } from "../../sim/world.ts";

export const ORG = "acme";
export const PREFIX = "acme-mac";
export const HOST_ID = "mini";
export const NEIGHBOUR_PREFIXES = ["other", `${PREFIX}2`] as const;
export const SLOTS = [1, 2] as const;
export const BIN = join(import.meta.dir, "..", "..", "dist", "linux-x64");

/** The soak's timing: short enough for hundreds of cycles in minutes, long enough for the fast profile. */
export const TIMING = {
  /** How long GitHub keeps a lost runner busy (and its job in progress); short, so every ghost can be deleted before the end. */
  lostRunnerBusyMs: 3_000,
  /** A silent runner session is dropped after this. */
  sessionLeaseMs: 4_000,
  /** Idle JIT runners are never retired by the sim on its own: the soak retires them itself, and neighbours' runners must stay. */
  idleJitRunnerRetireMs: 3_600_000,
  backoffInitial: "1s",
  backoffMax: "8s",
  bootTimeout: "8s",
  listenTimeout: "20s",
  jobTimeout: "2m",
} as const;

export interface SoakHost {
  world: World;
  host: SimHost;
  /** What the host's processes run with. */
  env: Record<string, string>;
  configPath: string;
  config: Config;
  stateDir: string;
  logDir: string;
  /** Every job's script appends its number here (the sim's guests are host processes): a job that ran twice shows twice. */
  runsFile: string;
}

/** `<prefix>-<host>-<slot>-`: what a slot's VM and runner names start with. */
export const slotPrefix = (slot: number, prefix: string = PREFIX) => `${prefix}-${HOST_ID}-${slot}-`;

export async function startSoakWorld(o: { profile: string }): Promise<SoakHost> {
  const world = await startWorld({
    registry: "required",
    github: { orgs: [ORG], validate: true, lostRunnerBusyMs: TIMING.lostRunnerBusyMs, sessionLeaseMs: TIMING.sessionLeaseMs, idleJitRunnerRetireMs: TIMING.idleJitRunnerRetireMs },
  });
  const host = world.addHost(HOST_ID, { profile: o.profile as "fast" });
  const stateDir = join(world.dir, "soak", "state");
  const logDir = join(world.dir, "soak", "logs");
  for (const dir of [stateDir, logDir]) mkdirSync(dir, { recursive: true }); // as install does
  const configPath = world.writeConfig({
    runner: {
      name_prefix: PREFIX, labels: ["self-hosted", "macOS", "ARM64", PREFIX],
      job_timeout: TIMING.jobTimeout, listen_timeout: TIMING.listenTimeout,
    },
    vm: { boot_timeout: TIMING.bootTimeout },
    host: {
      id: HOST_ID, state_dir: stateDir, log_dir: logDir, dhcp_leases_path: host.leasesPath,
      backoff_initial: TIMING.backoffInitial, backoff_max: TIMING.backoffMax,
    },
  }, "soak.yml");
  const env = { HOME: process.env.HOME ?? "/root", ...world.env, ...host.env };
  return { world, host, env, configPath, config: loadConfig({ path: configPath }), stateDir, logDir, runsFile: join(world.dir, "soak", "runs.txt") };
}

export interface NeighbourObject {
  kind: "vm" | "runner";
  name: string;
  /** Runner id on GitHub. */
  id?: number;
  /** The VM's config.json mtime when made: any change means someone touched it. */
  mtimeMs?: number;
}

/** Makes each neighbour's objects: two stopped VMs in our tart home and two runners on our org. */
export async function makeNeighbours(h: SoakHost): Promise<NeighbourObject[]> {
  const made: NeighbourObject[] = [];
  for (const prefix of NEIGHBOUR_PREFIXES) {
    for (const slot of SLOTS) {
      const name = `${slotPrefix(slot, prefix)}${slot === 1 ? "a1b2c3" : "d4e5f6"}`;
      const r = spawnSync(h.config.host.tartPath, ["clone", h.world.imageRef, name, "--insecure"], { env: h.env, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`soak: cloning the neighbour VM ${name} failed: ${r.stderr}`);
      made.push({ kind: "vm", name, mtimeMs: statSync(join(h.host.tartHome, "vms", name, "config.json")).mtimeMs });
      const res = await fetch(`${h.world.github.url}/orgs/${ORG}/actions/runners/generate-jitconfig`, {
        method: "POST",
        headers: { authorization: `token ${h.world.github.pat}`, "content-type": "application/json" },
        body: JSON.stringify({ name, runner_group_id: 1, labels: ["self-hosted", "macOS", "ARM64", prefix] }),
      });
      if (res.status !== 201) throw new Error(`soak: registering the neighbour runner ${name} failed: ${res.status} ${await res.text()}`);
      made.push({ kind: "runner", name, id: ((await res.json()) as { runner: { id: number } }).runner.id });
    }
  }
  return made;
}

/** The slots' launchd agents, rendered by lib/host/launchd/render.ts and run by sim/launchd.ts. */
export function startAgents(h: SoakHost, hooks: (slot: number) => Pick<AgentOptions, "onSpawn" | "onExit">): Map<number, Agent> {
  const dir = join(h.world.dir, "soak", "LaunchAgents");
  mkdirSync(dir, { recursive: true });
  const rendered = renderAgents({
    binDir: BIN, configPath: h.configPath, slots: SLOTS.length, logDir: h.logDir, stateDir: h.stateDir, jobTimeoutMs: h.config.runner.jobTimeoutMs, pull: false,
  });
  const agents = new Map<number, Agent>();
  for (const a of rendered) {
    const path = join(dir, a.fileName);
    writeFileSync(path, a.xml);
    agents.set(a.slot!, startAgent(path, { env: h.env, ...hooks(a.slot!) }));
  }
  return agents;
}
