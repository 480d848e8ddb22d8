// The two contenders, each in its own org with its own runner label and
// names, on the same simulated Mac: the compiled `loop` as launchd runs it
// (sim/launchd.ts, the rendered slot plists), and bench/baseline.sh, one
// bash loop per slot. Both are started and stopped block by block; stop()
// reports what their processes cost (tart's share included; the caller
// subtracts it from the trace).
import { mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../lib/config/index.ts";
import { renderAgents } from "../lib/host/launchd/render.ts";
import { sshSettings } from "../lib/vm/guest.ts";
import { startAgent, type Agent } from "../sim/launchd.ts";
import { parseLogLines } from "../sim/logs.ts";
import type { SimHost, World } from "../sim/world.ts";
import { BIN, start, worldEnv } from "../tests/helpers/e2e.ts";
import type { BenchOptions } from "./options.ts";

export interface Cost {
  /** CPU of the contender's processes and the children they waited for (tart included), ms. */
  treeCpuMs: number;
  /** CPU of the controlling processes alone (the loop processes; the bash loops), ms. */
  selfCpuMs: number;
  /** Peak RSS of one controlling process, KiB. */
  peakRssKb: number;
  /** Loop processes: children not yet reaped when they exited (the next VM's run process, left running on purpose). */
  unreaped: number;
  /** The controlling processes: tart processes they waited for are in treeCpuMs, the others are not. */
  pids: Set<number>;
}

export interface Contender {
  /** loop, baseline; the idle scenario also runs loop-today (vm.reuse_idle: false). */
  name: string;
  org: string;
  /** The label its runners carry and its jobs ask for. */
  label: string;
  /** The slot a runner or VM name of this contender belongs to. */
  slotOf(name: string): number | undefined;
  /** Starts every slot; `trace` is this block's $SIM_TART_TRACE. */
  start(trace: string): void;
  /** Stops every slot as an operator would and removes what they left. */
  stop(): Promise<Cost>;
  /** The bench is interrupted: kill whatever runs, at once (synchronous, for an exit hook). */
  kill(): void;
}

function killGroup(pid: number | undefined): void {
  try {
    if (pid) process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

export interface Stage {
  world: World;
  host: SimHost;
  dir: string;
  o: BenchOptions;
}

const slotFrom = (re: RegExp) => (name: string) => {
  const m = re.exec(name);
  return m ? Number(m[1]) : undefined;
};

/** A loop of its own (name, org = label, runner name prefix) with extra `vm:` settings; the default is the turnaround bench's. */
export interface LoopVariant {
  name: string;
  org: string;
  prefix: string;
  vm?: Record<string, unknown>;
}

export function loopContender({ world, host, dir, o }: Stage, variant: LoopVariant = { name: "loop", org: "bench-loop", prefix: "bl" }): Contender {
  const { name, org, prefix } = variant;
  const label = org;
  const stateDir = join(dir, name, "state");
  const logDir = join(dir, name, "logs");
  const installation = world.github.app.installations.find((i) => i.account === org)!;
  const configPath = world.writeConfig({
    github: { url: `${world.github.url}/${org}`, app: { installation_id: installation.id } },
    runner: { name_prefix: prefix, labels: ["self-hosted", "macOS", "ARM64", label] },
    vm: { start: o.path, ...variant.vm },
    host: { id: "bench", slots: o.slots, state_dir: stateDir, log_dir: logDir, dhcp_leases_path: host.leasesPath },
  }, `bench-${name}.yml`);
  const config = loadConfig({ path: configPath });
  // As install does: launchd makes neither.
  for (const d of [stateDir, logDir]) mkdirSync(d, { recursive: true });
  const plists = renderAgents({ binDir: BIN, configPath, slots: o.slots, logDir, stateDir, jobTimeoutMs: config.runner.jobTimeoutMs, pull: false }).map((a) => {
    const path = join(dir, name, a.fileName);
    writeFileSync(path, a.xml);
    return { path, log: a.plist.StandardErrorPath! };
  });
  let agents: Agent[] = [];
  let offsets: number[] = [];
  let pids = new Set<number>();
  const size = (p: string) => {
    try {
      return readFileSync(p).length;
    } catch {
      return 0;
    }
  };
  return {
    name,
    org,
    label,
    slotOf: slotFrom(new RegExp(`^${prefix}-bench-(\\d)-`)),
    start(trace) {
      offsets = plists.map((p) => size(p.log));
      pids = new Set();
      agents = plists.map((p) => startAgent(p.path, { env: { ...worldEnv(world), ...host.env, SIM_TART_TRACE: trace }, onSpawn: (pid) => pids.add(pid) }));
    },
    async stop() {
      await Promise.all(agents.map((a) => a.bootout()));
      // As install --remove does after the bootout (the golden stays: it outlives restarts).
      for (let slot = 1; slot <= o.slots; slot++) await start(world, "cleanup", ["--slot", String(slot), "--config", configPath], host.env).done;
      const exits = plists.flatMap((p, i) => parseLogLines(readFileSync(p.log).subarray(offsets[i]).toString("utf8"))).filter((l) => l.event === "loop.exit");
      const sum = (f: (l: Record<string, unknown>) => number) => exits.reduce((n, l) => n + f(l), 0);
      return {
        treeCpuMs: sum((l) => Number(l.cpu_ms) + Number(l.children_cpu_ms ?? 0)),
        selfCpuMs: sum((l) => Number(l.cpu_ms)),
        peakRssKb: Math.max(0, ...exits.map((l) => Number(l.max_rss_kb))),
        unreaped: sum((l) => Number(l.unreaped ?? 0)),
        pids,
      };
    },
    kill: () => agents.forEach((a) => killGroup(a.pid)),
  };
}

/** /proc/<pid>/stat utime + stime (ms) and /proc/<pid>/status VmHWM (KiB) of a live process. */
function procUsage(pid: number): { cpuMs: number; hwmKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return { cpuMs: (Number(f[11]) + Number(f[12])) * 10, hwmKb: Number(hwm ?? 0) };
}

export function baselineContender({ world, host, dir, o }: Stage): Contender {
  const org = "bench-base";
  const label = "bench-base";
  const config = loadConfig({ path: world.writeConfig({}, "bench-base-ref.yml") });
  const ssh = sshSettings(config);
  const env = {
    ...worldEnv(world),
    ...host.env,
    TART: config.host.tartPath,
    IMAGE: world.imageRef,
    TART_FLAGS: world.imageRef.includes("/") ? "--insecure" : "",
    API: world.github.url,
    ORG: org,
    TOKEN_FILE: world.patPath,
    LABELS: JSON.stringify(["self-hosted", "macOS", "ARM64", label]),
    NAME_PREFIX: "bb",
    SSH_USER: ssh.user,
    SSH_PORT: String(ssh.port),
    SSH_KEY: ssh.privateKeyPath,
    KNOWN_HOSTS: ssh.knownHostsPath,
  };
  let loops: ReturnType<typeof Bun.spawn>[] = [];
  return {
    name: "baseline",
    org,
    label,
    slotOf: slotFrom(/^bb-(\d)-/),
    start(trace) {
      const log = openSync(join(dir, "baseline.log"), "a");
      loops = Array.from({ length: o.slots }, (_, i) =>
        Bun.spawn(["bash", join(import.meta.dir, "baseline.sh"), String(i + 1)], { env: { ...env, SIM_TART_TRACE: trace }, detached: true, stdio: ["ignore", log, log] }),
      );
    },
    async stop() {
      const cost: Cost = { treeCpuMs: 0, selfCpuMs: 0, peakRssKb: 0, unreaped: 0, pids: new Set(loops.map((p) => p.pid)) };
      await Promise.all(loops.map(async (p) => {
        const own = procUsage(p.pid);
        // The whole process group, as a terminal's ^C or launchd would: the runner's ssh ends, the trap cleans up.
        process.kill(-p.pid, "SIGTERM");
        await p.exited;
        cost.treeCpuMs += Number(p.resourceUsage()!.cpuTime.total) / 1000;
        cost.selfCpuMs += own.cpuMs;
        cost.peakRssKb = Math.max(cost.peakRssKb, own.hwmKb);
      }));
      return cost;
    },
    kill: () => loops.forEach((p) => killGroup(p.pid)),
  };
}
