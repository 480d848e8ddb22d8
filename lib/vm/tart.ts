// A typed wrapper around the `tart` CLI: every call has a deadline, every failure says what to do.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ProcessPromise } from "zx/core";
import { MacosRunnerError, type ExitKind } from "../core/errors.ts";
import { finished, sh, type Finished } from "../core/proc.ts";
import { poll, sleep } from "../core/wait.ts";
import { tartHome } from "./tart-cache.ts";

export class TartError extends MacosRunnerError {
  constructor(
    message: string,
    readonly command: string,
    readonly tartExitCode: number,
    readonly stderr: string,
    kind: ExitKind = "failure",
  ) {
    super(message, { kind });
  }
}
export class TartMissingError extends TartError {}
/** Apple's 2-VM limit: other VMs (maybe not ours) are running. */
export class VmLimitError extends TartError {
  constructor(
    readonly others: string[],
    command: string,
    tartExitCode: number,
    stderr: string,
    message = `another VM is running on this host: ${others.join(", ") || "(names not given)"}; macOS allows two. Stop what is not ours (tart list) or lower host.slots`,
  ) {
    super(message, command, tartExitCode, stderr, "tempfail");
  }
}
/** The VM limit with fewer than two VMs running, for longer than a place takes to free: Virtualization.framework leaked places (macOS 26.3); only a reboot frees them. */
export class HostDegradedError extends VmLimitError {
  constructor(running: string[], waitedMs: number, command: string, tartExitCode: number, stderr: string) {
    super(running, command, tartExitCode, stderr,
      `this host cannot start VMs: macOS reports its VM limit reached while ${running.length === 0 ? "no VM runs" : `only ${running.join(", ")} runs`} (still after ${Math.round(waitedMs / 1000)} s): it has leaked VM places; reboot the Mac`);
  }
}
export class VmStillRunningError extends TartError {
  constructor(readonly vm: string, waitedMs: number) {
    super(
      `VM ${vm} is still running ${Math.round(waitedMs / 1000)} s after it was forced off (tart stop ${vm} --timeout 0); the next VM of the slot is not started beside it. See which process runs it (ps ax | grep "tart run ${vm}"), end it, or reboot the Mac`,
      "stop", 1, "");
  }
}
export class VmNotFoundError extends TartError {}

export interface VmListing {
  Source: "local" | "OCI";
  Name: string;
  Running: boolean;
  State: string;
}

export interface RunningVm {
  pid: number;
  /** With the pid, the process's identity (a pid may be reused). */
  startTime: string | undefined;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

export interface GuestProcess {
  readonly stdout: NodeJS.ReadableStream;
  readonly stderr: NodeJS.ReadableStream;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export interface TartOptions {
  path: string;
  env?: Record<string, string>;
  /** TART_REGISTRY_*: for `tart clone` and `tart pull` only. */
  credentials?: Record<string, string>;
  insecure?: boolean;
}

const REGISTRY_ENV = ["TART_REGISTRY_USERNAME", "TART_REGISTRY_PASSWORD", "TART_REGISTRY_HOSTNAME"] as const;

/** `The number of VMs exceeds the system limit (other running VMs: a, b)` -> [a, b]. */
export function vmLimitOthers(output: string): string[] | undefined {
  const m = /exceeds the system limit(?: \(other running VMs: ([^)]*)\))?/.exec(output);
  if (!m) return undefined;
  return (m[1] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

// A process is known by pid and start time together: the kernel reuses pids.
const hasProc = existsSync("/proc/self/stat");

/** An opaque token; undefined when the pid names no live process (a zombie counts as gone). */
export function processStartTime(pid: number): string | undefined {
  if (!(pid > 0)) return undefined;
  if (hasProc) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z" || fields[0] === "X") return undefined;
      return fields[19];
    } catch {
      return undefined;
    }
  }
  const r = spawnSync("/bin/ps", ["-o", "stat=,lstart=", "-p", String(pid)], { encoding: "utf8", timeout: 5_000 });
  const line = r.status === 0 ? r.stdout.trim() : "";
  if (!line || line.startsWith("Z")) return undefined;
  return line.replace(/^\S+\s+/, "");
}

export function isSameProcess(pid: number, startTime: string): boolean {
  return processStartTime(pid) === startTime;
}

/** Another user's process answers EPERM; a zombie counts as dead where /proc tells. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !hasProc || processStartTime(pid) !== undefined;
}

/** How often an attached `tart run` (not our child) is checked for having ended. */
const ATTACHED_POLL_MS = 250;
/** SIGINT, then SIGKILL after this, as `tart stop` does (Stop.swift), shorter than its 30 s: the VM is disposable. */
const STOP_GRACE_MS = 3_000;
/** How long tart may take to report a forced-off VM off (its lock released). */
const OFF_WAIT_MS = 10_000;
const OFF_POLL_MS = 100;

/**
 * Signals a `tart run` and its process group (it leads its own): a wrapper at
 * host.tart_path that runs tart as a child and forwards nothing is reached too.
 */
function signalRun(pid: number, signal: NodeJS.Signals): void {
  // Never -1 or 0 (every process, our own group) for a run whose pid is unknown.
  if (!(pid > 1)) return;
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return;
    } catch {
      // no such group (or process): ended meanwhile
    }
  }
}

/**
 * A kill signals the whole process tree (zx's walk with ps), not the one
 * process we started: host.tart_path may be a wrapper that runs tart as its
 * child, in a session of its own, and forwards nothing; a `tart exec` left
 * behind would keep the command's pipes open, so its end would never come.
 */
export function guestProcessOf(p: ProcessPromise): GuestProcess {
  return {
    stdout: p.stdout,
    stderr: p.stderr,
    exited: p.then((o) => ({ code: o.exitCode, signal: o.signal as string | null })),
    kill: (signal = "SIGTERM") => void p.kill(signal).catch(() => {}),
  };
}

/** What the product asks of tart: TartCli on a host; the in-process tests' model is held to the same contract tests. */
export interface Tart {
  readonly home: string;
  clone(source: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  set(name: string, s: { cpu?: number | undefined; memoryMb?: number | undefined; randomMac?: boolean }): Promise<void>;
  run(name: string, logFile: string, o?: { suspendable?: boolean | undefined }): RunningVm;
  attach(name: string, pid: number, startTime: string | undefined): RunningVm | undefined;
  ip(name: string, waitS: number): Promise<string>;
  macAddress(name: string): string | undefined;
  forceOff(name: string): Promise<void>;
  isRunning(name: string): Promise<boolean>;
  delete(name: string, deadlineMs?: number): Promise<void>;
  list(): Promise<VmListing[]>;
  listCached(): Promise<VmListing[]>;
  suspend(name: string): Promise<void>;
  pull(ref: string, timeoutMs: number): Promise<void>;
  exec(name: string, command: string, o?: { input?: string; signal?: AbortSignal }): GuestProcess;
}

export class TartCli implements Tart {
  /** The `tart run` processes this process started or attached, by VM name. */
  private readonly runs = new Map<string, RunningVm & { own: boolean }>();

  constructor(private readonly opts: TartOptions) {}

  get home(): string {
    return tartHome({ ...process.env, ...this.opts.env });
  }

  /** Registry credentials only for clone and pull (even inherited ones are removed): a `tart run`'s environment is readable by the job (`ps eww`). */
  private env(o: { withCredentials?: boolean } = {}): Record<string, string | undefined> {
    const registry = o.withCredentials ? this.opts.credentials : Object.fromEntries(REGISTRY_ENV.map((k) => [k, undefined]));
    return { CI: "true", ...this.opts.env, ...registry };
  }

  private async call(args: string[], timeoutMs: number, signal?: AbortSignal, o: { withCredentials?: boolean } = {}): Promise<Finished> {
    // exec: tart replaces the shell, one process fewer per call.
    const r = await finished(sh({ timeoutMs, env: this.env(o), ...(signal && { signal }) })`exec ${this.opts.path} ${args}`);
    if (r.code === 127) {
      throw new TartMissingError(
        `tart not found at "${this.opts.path}": install it (brew install cirruslabs/cli/tart) or fix host.tart_path`,
        args[0]!, r.code, r.stderr, "unavailable");
    }
    return r;
  }

  private fail(what: string, args: string[], r: Finished): TartError {
    const others = vmLimitOthers(r.stderr);
    if (others) return new VmLimitError(others, args[0]!, r.code, r.stderr);
    const detail = r.timedOut ? "timed out" : r.stderr.split("\n").slice(-3).join(" ").slice(0, 300) || `exit ${r.code}`;
    const message = `tart ${args[0]} failed (${what}): ${detail}`;
    if (r.code === 2 && /does not exist/.test(r.stderr)) return new VmNotFoundError(message, args[0]!, r.code, r.stderr);
    return new TartError(message, args[0]!, r.code, r.stderr);
  }

  async clone(source: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const args = ["clone", source, name, ...(this.opts.insecure ? ["--insecure"] : [])];
    const r = await this.call(args, timeoutMs, signal, { withCredentials: true });
    if (signal?.aborted) throw new TartError(`tart clone ${name} stopped by a signal`, "clone", r.code, r.stderr, "stopped");
    if (r.code !== 0) throw this.fail(`${source} -> ${name}`, args, r);
  }

  async set(name: string, s: { cpu?: number | undefined; memoryMb?: number | undefined; randomMac?: boolean }): Promise<void> {
    const args = ["set", name];
    if (s.cpu) args.push("--cpu", String(s.cpu));
    if (s.memoryMb) args.push("--memory", String(s.memoryMb));
    if (s.randomMac) args.push("--random-mac");
    if (args.length === 2) return;
    const r = await this.call(args, 30_000);
    if (r.code !== 0) throw this.fail(name, args, r);
  }

  /** Detached in its own process group: the VM outlives this process on purpose (a crashed loop's VM is found by the next launch). */
  run(name: string, logFile: string, o: { suspendable?: boolean | undefined } = {}): RunningVm {
    const fd = openSync(logFile, "a", 0o600);
    const flags = ["--no-graphics", ...(o.suspendable ? ["--suspendable"] : [])];
    const p = sh({ env: this.env() })({ detached: true, stdio: ["ignore", fd, fd] })`exec ${this.opts.path} run ${flags} ${name}`;
    closeSync(fd);
    const exited = (async () => {
      const out = await p;
      return { code: out.exitCode, signal: out.signal as string | null };
    })();
    p.child?.unref();
    const pid = p.pid ?? -1;
    return this.track(name, { pid, startTime: processStartTime(pid), exited }, true);
  }

  /** A `tart run` an earlier process started: polled, not our child. Undefined when that process (pid and start time) is gone. */
  attach(name: string, pid: number, startTime: string | undefined): RunningVm | undefined {
    if (startTime === undefined || !isSameProcess(pid, startTime)) return undefined;
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      const timer = setInterval(() => {
        if (isSameProcess(pid, startTime)) return;
        clearInterval(timer);
        resolve({ code: null, signal: null });
      }, ATTACHED_POLL_MS);
      timer.unref();
    });
    return this.track(name, { pid, startTime, exited }, false);
  }

  private track(name: string, vm: RunningVm, own: boolean): RunningVm {
    const entry = { ...vm, own };
    this.runs.set(name, entry);
    void vm.exited.then(() => {
      if (this.runs.get(name) === entry) this.runs.delete(name);
    });
    return vm;
  }

  async ip(name: string, waitS: number): Promise<string> {
    const args = ["ip", name, "--wait", String(Math.min(65535, Math.max(1, Math.ceil(waitS))))];
    const r = await this.call(args, (waitS + 10) * 1000);
    if (r.code !== 0) throw this.fail(name, args, r);
    return r.stdout.trim();
  }

  macAddress(name: string): string | undefined {
    try {
      const config = JSON.parse(readFileSync(join(this.home, "vms", name, "config.json"), "utf8")) as { macAddress?: unknown };
      return typeof config.macAddress === "string" ? config.macAddress : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * As `tart stop` does: SIGINT to the run process we know, SIGKILL after
   * STOP_GRACE_MS. A wrapper's end can leave the VM running, so it is off only
   * when tart says so; until then `tart stop --timeout 0`. A missing VM is off.
   */
  async forceOff(name: string): Promise<void> {
    const run = this.runs.get(name);
    if (run && this.alive(run)) {
      signalRun(run.pid, "SIGINT");
      if (!(await this.ended(run, STOP_GRACE_MS))) {
        signalRun(run.pid, "SIGKILL");
        await this.ended(run, STOP_GRACE_MS);
      }
    }
    if (!(await this.isRunning(name))) return;
    const args = ["stop", name, "--timeout", "0"];
    const r = await this.call(args, 30_000);
    if (!(r.code === 0 || r.code === 2 || /failed to forcefully terminate.*No such process/.test(r.stderr))) throw this.fail(name, args, r);
    const off = await poll(async () => ((await this.isRunning(name)) ? undefined : true), { deadline: Date.now() + OFF_WAIT_MS, everyMs: OFF_POLL_MS });
    if (!off) throw new VmStillRunningError(name, OFF_WAIT_MS);
  }

  private alive(run: RunningVm & { own: boolean }): boolean {
    if (!(run.pid > 1)) return false;
    return run.own || run.startTime === undefined ? isAlive(run.pid) : isSameProcess(run.pid, run.startTime);
  }

  private async ended(run: RunningVm & { own: boolean }, withinMs: number): Promise<boolean> {
    if (run.own) return await Promise.race([run.exited.then(() => true), sleep(withinMs).then(() => false)]);
    return (await poll(() => (this.alive(run) ? undefined : true), { deadline: Date.now() + withinMs, everyMs: 5 })) === true;
  }

  async isRunning(name: string): Promise<boolean> {
    const args = ["get", name, "--format", "json"];
    const r = await this.call(args, 30_000);
    if (r.code === 2 || (r.code !== 0 && /does not exist/.test(r.stderr))) return false;
    if (r.code !== 0) throw this.fail(name, args, r);
    try {
      return (JSON.parse(r.stdout) as { Running?: unknown }).Running === true;
    } catch (err) {
      throw new TartError(`tart get ${name} printed something that is not its JSON (${(err as Error).message}): ${r.stdout.slice(0, 120)}`, "get", r.code, r.stderr, "bad-input");
    }
  }

  /** Retried briefly while tart still sees the VM running: a forced stop returns right after its SIGKILL. */
  async delete(name: string, deadlineMs = 10_000): Promise<void> {
    const args = ["delete", name];
    const until = Date.now() + deadlineMs;
    for (;;) {
      const r = await this.call(args, 30_000);
      if (r.code === 0 || r.code === 2) return;
      if (!/is running/.test(r.stderr) || Date.now() > until) throw this.fail(name, args, r);
      await sleep(100);
    }
  }

  readonly list = () => this.listSource("local");
  readonly listCached = () => this.listSource("oci");

  private async listSource(source: "local" | "oci"): Promise<VmListing[]> {
    const args = ["list", "--format", "json", "--source", source];
    const r = await this.call(args, 30_000);
    if (r.code !== 0) throw this.fail(`listing ${source === "oci" ? "cached images" : "VMs"}`, args, r);
    try {
      const parsed: unknown = JSON.parse(r.stdout);
      if (!Array.isArray(parsed)) throw new Error("not an array");
      return parsed.filter((v): v is VmListing => typeof (v as VmListing)?.Name === "string");
    } catch (err) {
      throw new TartError(`tart list printed something that is not its JSON listing (${(err as Error).message}): ${r.stdout.slice(0, 120)}`, "list", r.code, r.stderr, "bad-input");
    }
  }

  async suspend(name: string): Promise<void> {
    const args = ["suspend", name];
    const r = await this.call(args, 120_000);
    if (r.code !== 0) throw this.fail(name, args, r);
  }

  /** `input` goes to stdin (the one way a secret reaches the guest); a kill may leave the command running in the guest (the agent kills only its direct child). */
  exec(name: string, command: string, o: { input?: string; signal?: AbortSignal } = {}): GuestProcess {
    const args = ["exec", ...(o.input !== undefined ? ["-i"] : []), name, "/bin/sh", "-c", command];
    return guestProcessOf(sh({ env: this.env(), ...(o.input !== undefined && { input: o.input }), ...(o.signal && { signal: o.signal }) })`exec ${this.opts.path} ${args}`);
  }

  async pull(ref: string, timeoutMs: number): Promise<void> {
    const args = ["pull", ref, ...(this.opts.insecure ? ["--insecure"] : [])];
    const r = await this.call(args, timeoutMs, undefined, { withCredentials: true });
    if (r.code !== 0) throw this.fail(ref, args, r);
  }
}
