// Shared by the sim's tart tests: `tart run` as a real process, the system
// ssh client into a guest, process probes, and polling with deadlines.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HOST_KEY_ALIAS, LOCAL_IMAGE_NAME, SIM_BIN, startTartFixture, type TartFixture, type TartResult } from "../../sim/image/fixture.ts";
import { commandLine } from "../../sim/tart/guest/processes.ts";
import { statFields } from "../../sim/tart/process.ts";
import { runState } from "../../sim/tart/running.ts";
import type { SimTartConfig } from "../../sim/tart/settings.ts";

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Waits until a process runs with exactly this command line (`pgrep -fx`). A
 * guest's processes are this host's: looked for in /proc, not by an ssh into
 * the guest, whose blocking call would stall the tests that run meanwhile.
 */
export async function commandRuns(command: string): Promise<void> {
  const runs = () => readdirSync("/proc").some((pid) => /^\d+$/.test(pid) && commandLine(Number(pid)).join(" ").trim() === command);
  await waitFor(`'${command}' to run`, runs, 5000, 100);
}

/**
 * Runs `fn` with a tart of its own (no registry): its VMs, VM places, leases
 * and settings are no other test's, so tests can run at once. Stopped after.
 */
export async function withTart<T>(settings: SimTartConfig, fn: (fx: TartFixture) => Promise<T> | T): Promise<T> {
  const fx = await startTartFixture({ registry: false, settings });
  try {
    return await fn(fx);
  } finally {
    await fx.stop();
  }
}

export interface Run {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];

/** SIGKILLs every process these helpers started (for afterAll). */
export function killStarted(): void {
  for (const p of started) p.kill("SIGKILL");
}

export function startRun(fx: TartFixture, name: string, args: string[] = []): Run {
  const proc = spawn(join(SIM_BIN, "tart"), ["run", name, "--no-graphics", ...args], { env: { ...process.env, ...fx.env } });
  started.push(proc);
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on("exit", (code, signal) => r({ code, signal })));
  return { proc, out: () => out, err: () => err, exited };
}

export function clone(fx: TartFixture, name: string, source = LOCAL_IMAGE_NAME): void {
  const r = fx.tart("clone", source, name);
  if (r.code !== 0) throw new Error(`clone ${name}: ${r.stderr}`);
}

/** The simulated tart, not blocking the tests that run meanwhile (fx.tart does). */
export function tartAsync(fx: TartFixture, ...args: string[]): Promise<TartResult> {
  const proc = spawn(join(SIM_BIN, "tart"), args, { env: { ...process.env, ...fx.env } });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  const closed = new Promise<void>((r) => proc.on("close", () => r()));
  return new Promise((resolve) => proc.on("exit", (code) => {
    // Under load Bun can lose the end of a child's stdout after its exit (no 'close' ever): its output is awaited a while, not for ever.
    void Promise.race([closed, Bun.sleep(2000)]).then(() => resolve({ code: code ?? 128, stdout, stderr }));
  }));
}

export const vmDir = (fx: TartFixture, name: string) => join(fx.tartHome, "vms", name);

/** Waits until the guest's sshd answers (the run marker says so) and returns its address. */
export async function waitBooted(fx: TartFixture, name: string, timeoutMs = 10_000): Promise<string> {
  return await waitFor(`${name} to boot`, () => {
    const state = runState(vmDir(fx, name));
    return state?.booted && state.ip;
  }, timeoutMs);
}

export function sshArgs(fx: TartFixture, ip: string, opts: string[] = []): string[] {
  return [
    "-o", "StrictHostKeyChecking=yes", "-o", `HostKeyAlias=${HOST_KEY_ALIAS}`, "-o", `UserKnownHostsFile=${fx.knownHostsPath}`,
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", ...opts, "-i", fx.sshKeyPath, "-p", String(fx.settings().ssh_port), `admin@${ip}`,
  ];
}

export function ssh(fx: TartFixture, ip: string, command: string, input = "") {
  const r = spawnSync("ssh", [...sshArgs(fx, ip), command], { input, encoding: "utf8", timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface Session {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

/** An ssh client left running. */
export function startSSH(fx: TartFixture, ip: string, command: string, opts: string[] = []): Session {
  const proc = spawn("ssh", [...sshArgs(fx, ip, opts), command], { stdio: ["ignore", "pipe", "pipe"] });
  started.push(proc);
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (err += d));
  return { proc, out: () => out, err: () => err, exited: new Promise((r) => proc.on("exit", (code) => r(code))) };
}

/** A process's state letter (R, S, T, Z…), or undefined when it is gone. */
export const procState = (pid: number): string | undefined => statFields(pid)?.[0];

export const pidAlive = (pid: number) => {
  const s = procState(pid);
  return s !== undefined && s !== "Z" && s !== "X";
};

export const getJSON = (fx: TartFixture, name: string) => JSON.parse(fx.tart("get", name, "--format", "json").stdout) as Record<string, unknown>;
export const running = (fx: TartFixture, name: string) => getJSON(fx, name).Running as boolean;

/**
 * Waits until no VM place is held (the sim's place files): none still being
 * freed after its run ended and, with `running`, none of a VM still running;
 * so the next test does not meet the VM limit.
 */
export async function placesFreed(fx: TartFixture, o: { running?: boolean } = {}, timeoutMs = 5000): Promise<void> {
  const dir = join(fx.tartHome, "sim", "places");
  const held = () => {
    let files: string[] = [];
    try {
      files = readdirSync(dir);
    } catch {
      return 0;
    }
    return files.filter((f) => {
      if (!f.endsWith(".json")) return false; // a writer's temporary file
      try {
        const place = JSON.parse(readFileSync(join(dir, f), "utf8")) as { frees_at?: number };
        return place.frees_at === undefined ? o.running === true : place.frees_at > Date.now();
      } catch {
        return false; // removed meanwhile
      }
    }).length;
  };
  await waitFor(o.running ? "every VM place to free" : "VM places being freed", () => held() === 0, timeoutMs);
}
