// The end-to-end harness: one simulated world per test file, and per test a
// slot set of its own (its own org, name prefix, runner label, state and log
// dirs), so tests run concurrently without seeing each other's runners, jobs,
// VMs or API calls. Loops run as the compiled binary (start/loopBinary) or,
// where the binary adds nothing, in-process (loopInProcess) — real HTTP, real
// ssh, real tart calls either way; nothing of ours is mocked.
import { expect } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../../lib/config/index.ts";
import { tartFor, type SlotContext } from "../../lib/slot/context.ts";
import { createLogger } from "../../lib/core/log.ts";
import { hostId, slotNames } from "../../lib/config/names.ts";
import { stopController } from "../../lib/core/signals.ts";
import { systemClock } from "../../lib/core/wait.ts";
import { loop } from "../../lib/slot/loop.ts";
import { parseLogLines, type LogLine } from "../../sim/logs.ts";
import { startWorld, type SimHost, type SimTartConfig, type World, type WorldOptions } from "../../sim/world.ts";
import { ensureBinaries, start, until, worldEnv, type Run } from "../helpers/e2e.ts";

export { events, until, start, type Run } from "../helpers/e2e.ts";

/** Orgs of a file's world; each test takes the next one. */
const ORGS = Array.from({ length: 40 }, (_, i) => `t${i + 1}`);

export async function fileWorld(opts: WorldOptions = {}): Promise<World> {
  ensureBinaries(["loop"]);
  return startWorld({ registry: "required", ...opts, github: { orgs: ORGS, validate: true, ...opts.github } });
}

export interface Slots {
  world: World;
  /** The test's own Mac: its TART_HOME (two VM places), lease file and tart settings. */
  host: SimHost;
  /** What the test's processes run with: the world's env on this host. */
  env: Record<string, string>;
  org: string;
  /** runner.name_prefix, also the runner label every job of this test carries. */
  prefix: string;
  path: string;
  stateDir: string;
  logDir: string;
  config: Config;
}

let next = 0;
/** A config and a host of its own for one test: org, prefix, label, TART_HOME, state and log dirs; fast backoff. */
export function slots(world: World, overrides: Record<string, unknown> = {}, tart: SimTartConfig = {}): Slots {
  const org = ORGS[next++ % ORGS.length]!;
  const host = world.addHost(org, tart);
  const prefix = `${org}x`;
  const stateDir = join(world.dir, org, "state");
  const logDir = join(world.dir, org, "logs");
  for (const dir of [logDir, stateDir]) mkdirSync(dir, { recursive: true }); // as install does: launchd makes neither
  const installation = world.github.app.installations.find((i) => i.account === org)!;
  const o = overrides as { github?: object; runner?: object; host?: object };
  const path = world.writeConfig({
    ...overrides,
    github: { url: `${world.github.url}/${org}`, app: { id: world.github.app.id, installation_id: installation.id, private_key_path: world.appKeyPath }, ...o.github },
    runner: { name_prefix: prefix, labels: ["self-hosted", "macOS", "ARM64", prefix], ...o.runner },
    host: { state_dir: stateDir, log_dir: logDir, dhcp_leases_path: host.leasesPath, backoff_initial: "100ms", backoff_max: "400ms", ...o.host },
  }, `${org}.yml`);
  return { world, host, env: { ...worldEnv(world), ...host.env }, org, prefix, path, stateDir, logDir, config: loadConfig({ path }) };
}

/** Queues a job only this test's runners can take. */
export function enqueue(s: Slots, name: string, script = "echo ok") {
  return s.world.gh.enqueueJob({ name, labels: [s.prefix], script });
}

/**
 * A job that runs until the test opens its gate (a file of the test's, which
 * the job's shell in the guest polls): the job is sure to be running while
 * the test acts, and ends as soon as the test is done, not after a guessed sleep.
 */
export interface Gate {
  /** The job's script: wait for the gate, then run `then`. */
  script(then: string): string;
  open(): void;
}

export function gate(s: Slots, name: string): Gate {
  const path = join(s.stateDir, "..", `${name}.gate`);
  return {
    script: (then) => `while [ ! -e '${path}' ]; do sleep 0.1; done; ${then}`,
    open: () => writeFileSync(path, ""),
  };
}

export async function job(s: Slots, id: number) {
  return s.world.gh.job(id);
}

/** The compiled loop for one slot; resolves with its exit and log lines. */
export function loopBinary(s: Slots, slot = 1, env: Record<string, string> = {}): Run {
  return start(s.world, "loop", ["--slot", String(slot), "--config", s.path], { ...s.host.env, ...env });
}

export interface InProcessRun {
  done: Promise<{ code: number; lines: LogLine[] }>;
  stop: ReturnType<typeof stopController>;
  lines: LogLine[];
}

/** `loop()` in this process against the world (what the binary runs), logs captured as JSON lines. */
export function loopInProcess(s: Slots, slot = 1): InProcessRun {
  const lines: LogLine[] = [];
  let buffered = "";
  const stream = new Writable({
    write(chunk, _enc, cb) {
      buffered += String(chunk);
      const end = buffered.lastIndexOf("\n") + 1;
      lines.push(...parseLogLines(buffered.slice(0, end)));
      buffered = buffered.slice(end);
      cb();
    },
  });
  const log = createLogger({ stream, format: "json", fields: { slot } });
  const config = s.config;
  const tart = tartFor(config, { TART_HOME: s.host.tartHome, SIM_TART_CONFIG: s.host.env.SIM_TART_CONFIG! });
  const ctx: SlotContext = { config, slot, log, tart, names: slotNames(config.runner.namePrefix, slot, hostId(config.host.id, config.host.stateDir)), clock: systemClock };
  const stop = stopController();
  return { stop, lines, done: loop(ctx, stop).then((code) => ({ code, lines })) };
}

/** This test's VMs as tart lists them. */
export function vms(s: Slots): { name: string; running: boolean }[] {
  const r = spawnSync(s.config.host.tartPath, ["list", "--format", "json", "--source", "local"], { env: s.env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tart list failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { Name: string; Running: boolean }[]).filter((v) => v.Name.startsWith(`${s.prefix}-`)).map((v) => ({ name: v.Name, running: v.Running }));
}

/** This test's runners on GitHub, its jobs, and its API calls by endpoint. */
export async function github(s: Slots) {
  const state = await s.world.gh.state();
  return {
    runners: state.runners.filter((r) => r.name.startsWith(`${s.prefix}-`)),
    jobs: state.jobs.filter((j) => j.labels.includes(s.prefix)),
    calls: state.requests.byAccount[s.org] ?? {},
    violations: state.violations,
  };
}

export function slotState(s: Slots, slot = 1): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(join(s.stateDir, `slot-${slot}.json`), "utf8"));
  } catch {
    return undefined;
  }
}

/** Every log line the slots wrote to their log dir (launchd-driven runs). */
export function logLines(s: Slots): LogLine[] {
  return readdirSync(s.logDir).filter((f) => f.endsWith(".log") && !f.includes(".vm.")).flatMap((f) => parseLogLines(readFileSync(join(s.logDir, f), "utf8")));
}

/** Log lines as a failing test prints them: one JSON line each, indented. */
export function logText(lines: LogLine[]): string {
  return lines.map((l) => `  ${JSON.stringify(l)}`).join("\n");
}

/** Waits until nothing of this test is left: no VM on disk, no runner on GitHub. */
export async function nothingLeft(s: Slots, timeoutMs = 20_000, log: LogLine[] = []): Promise<void> {
  await until(`no VM and no runner of ${s.prefix} left`, async () => vms(s).length === 0 && (await github(s)).runners.length === 0, timeoutMs, 100).catch(async (e) => {
    console.error(`left: VMs ${JSON.stringify(vms(s))}, runners ${JSON.stringify((await github(s)).runners)}; the log:\n${logText(log)}`);
    throw e;
  });
}

/** The calls of one endpoint kind for this test, e.g. count(calls, "generate-jitconfig"). */
export function count(calls: Record<string, number>, what: string): number {
  return Object.entries(calls).filter(([k]) => k.includes(what)).reduce((n, [, c]) => n + c, 0);
}

/** The run's exit code; when it is not the expected one, its log is printed to tell why. */
export async function exitOf(
  run: { done: Promise<{ code: number | null; lines: LogLine[] }>; lines: LogLine[] | (() => LogLine[]); child?: { kill(signal: NodeJS.Signals): unknown } },
  expected: number,
  withinMs = 60_000,
): Promise<LogLine[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const lines = typeof run.lines === "function" ? run.lines() : run.lines;
      console.error(`still running after ${withinMs} ms; its log so far:\n${lines.map((l) => `  ${l.ts ?? ""} ${l.level} ${l.event} ${l.phase ?? ""} ${l.vm ?? ""} ${l.msg ?? ""}`).join("\n")}`);
      run.child?.kill("SIGKILL");
      reject(new Error(`the run did not exit within ${withinMs} ms`));
    }, withinMs);
  });
  const r = await Promise.race([run.done, late]).finally(() => clearTimeout(timer));
  if (r.code !== expected) console.error(`exit ${r.code}, expected ${expected}; its log:\n${r.lines.map((l) => `  ${l.level} ${l.event} ${l.phase ?? ""} ${l.msg ?? ""}`).join("\n")}`);
  expect(r.code).toBe(expected);
  return r.lines;
}

/** Signals the guest processes of one VM of this test whose command line matches `pattern` (found by the sim's SIM_TART_VM marker). */
export function signalGuest(s: Slots, vm: string, pattern: RegExp, signal: NodeJS.Signals): number {
  const marker = `SIM_TART_VM=${join(s.host.tartHome, "vms", vm)}`;
  let hit = 0;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
      if (!env.includes(marker) || !pattern.test(cmd)) continue;
      process.kill(Number(pid), signal);
      hit++;
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return hit;
}
