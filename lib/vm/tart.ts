// A typed wrapper around the `tart` CLI. Every call goes through zx (lib/proc)
// with a deadline; failures become errors that say what to do.
import { closeSync, openSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { ProcessPromise } from "zx/core";
import { isAlive, isSameProcess, processStartTime } from "../core/process-identity.ts";
import { MacosRunnerError, type ExitKind } from "../core/errors.ts";
import { finished, sh, type Finished } from "../core/proc.ts";
import { poll, sleep } from "../core/wait.ts";

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
/** tart is not installed or host.tart_path is wrong. */
export class TartMissingError extends TartError {}
/** Apple's 2-VM limit: other VMs (maybe not ours) are running on the host. */
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
/**
 * Apple's VM limit is reached although tart shows fewer than two VMs running,
 * and stays so past the time a stopped VM's place takes to free: VM places
 * leaked by Virtualization.framework (seen on macOS 26.3), which only a
 * reboot of the Mac frees.
 */
export class HostDegradedError extends VmLimitError {
  constructor(running: string[], waitedMs: number, command: string, tartExitCode: number, stderr: string) {
    super(running, command, tartExitCode, stderr,
      `this host cannot start VMs: macOS reports its VM limit reached while ${running.length === 0 ? "no VM runs" : `only ${running.join(", ")} runs`} (still after ${Math.round(waitedMs / 1000)} s): it has leaked VM places; reboot the Mac`);
  }
}
/** A VM tart still shows running after it was forced off (SIGINT, SIGKILL, `tart stop --timeout 0`). */
export class VmStillRunningError extends TartError {
  constructor(readonly vm: string, waitedMs: number) {
    super(
      `VM ${vm} is still running ${Math.round(waitedMs / 1000)} s after it was forced off (tart stop ${vm} --timeout 0); the next VM of the slot is not started beside it. See which process runs it (ps ax | grep "tart run ${vm}"), end it, or reboot the Mac`,
      "stop", 1, "");
  }
}
/** The named VM does not exist (tart exits 2). */
export class VmNotFoundError extends TartError {}

export interface VmListing {
  Source: "local" | "OCI";
  Name: string;
  Running: boolean;
  State: string;
}

export interface RunningVm {
  pid: number;
  /** The start time of the process `pid` (lib/core/process-identity.ts): with the pid, its identity. */
  startTime: string | undefined;
  /** Resolves when `tart run` exits: the VM is off. */
  exited: Promise<{ code: number | null; signal: string | null }>;
}

/** A command running in a guest (`tart exec`): its output, its end. */
export interface GuestProcess {
  readonly stdout: NodeJS.ReadableStream;
  readonly stderr: NodeJS.ReadableStream;
  /** When the command ended: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export interface TartOptions {
  path: string;
  /** Extra environment for every tart call (TART_HOME when it is not this process's). */
  env?: Record<string, string>;
  /** TART_REGISTRY_*: in the environment of `tart clone` and `tart pull` only. */
  credentials?: Record<string, string>;
  insecure?: boolean;
}

/** The registry credentials tart reads from its environment. */
const REGISTRY_ENV = ["TART_REGISTRY_USERNAME", "TART_REGISTRY_PASSWORD", "TART_REGISTRY_HOSTNAME"] as const;

/** `The number of VMs exceeds the system limit (other running VMs: a, b)` -> [a, b]. */
export function vmLimitOthers(output: string): string[] | undefined {
  const m = /exceeds the system limit(?: \(other running VMs: ([^)]*)\))?/.exec(output);
  if (!m) return undefined;
  return (m[1] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

/** How often an attached `tart run` (not our child) is checked for having ended. */
const ATTACHED_POLL_MS = 250;
/**
 * How long a VM's run process has after SIGINT before it gets SIGKILL, as
 * `tart stop` does (Stop.swift: SIGINT, the VM's lock polled until its
 * timeout, then SIGKILL); shorter than tart's 30 s: the VM is disposable.
 */
const STOP_GRACE_MS = 3_000;
/** How long tart may take to report a forced-off VM off (its lock released) before that is an error. */
const OFF_WAIT_MS = 10_000;
/** How often tart is asked whether a forced-off VM is off. */
const OFF_POLL_MS = 100;

/**
 * Signals a `tart run` we started and its process group: `run` starts it
 * detached, as the leader of a group of its own, so a wrapper at
 * host.tart_path that runs tart as its child (and forwards nothing) has
 * tart in that group too, as a terminal's Ctrl-C would reach both.
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
 * A command started with `sh` as a GuestProcess. The command must `exec` its
 * program, so that a kill is one signal to it, not zx's walk of the process
 * tree (ps).
 */
export function guestProcessOf(p: ProcessPromise): GuestProcess {
  return {
    stdout: p.stdout,
    stderr: p.stderr,
    exited: p.then((o) => ({ code: o.exitCode, signal: o.signal as string | null })),
    kill: (signal = "SIGTERM") => void p.child?.kill(signal),
  };
}

/**
 * What the product asks of tart. On a host it is the tart CLI (TartCli); the
 * in-process tests give the cycle a second model of tart held to the same
 * contract tests (tests/contract/).
 */
export interface Tart {
  /** TART_HOME as tart resolves it. */
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
  /** `tart exec [-i] NAME /bin/sh -c command`; `input` is written to its stdin, then closed. */
  exec(name: string, command: string, o?: { input?: string; signal?: AbortSignal }): GuestProcess;
}

export class TartCli implements Tart {
  /** The `tart run` processes this process started or attached, by VM name, while they run. */
  private readonly runs = new Map<string, RunningVm & { own: boolean }>();

  constructor(private readonly opts: TartOptions) {}

  /** TART_HOME as tart resolves it. */
  get home(): string {
    return this.opts.env?.TART_HOME || process.env.TART_HOME || join(homedir(), ".tart");
  }

  /**
   * tart's environment. The registry credentials only `withCredentials`
   * (clone, pull): a `tart run` lives as long as the job, and its environment
   * is readable there (`ps eww`); one inherited from ours is removed too.
   */
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

  /** Clones; a stop (signal) kills a slow or hung clone at once. */
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

  /**
   * Starts `tart run --no-graphics` detached in its own process group, its
   * output appended to logFile (where tart reports a start failure or the
   * 2-VM limit). The VM outlives this process on purpose: a crashed loop's
   * VM is found and stopped by the slot's next launch.
   */
  run(name: string, logFile: string, o: { suspendable?: boolean | undefined } = {}): RunningVm {
    const fd = openSync(logFile, "a", 0o600);
    const flags = ["--no-graphics", ...(o.suspendable ? ["--suspendable"] : [])];
    const p = sh({ env: this.env() })({ detached: true, stdio: ["ignore", fd, fd] })`exec ${this.opts.path} run ${flags} ${name}`;
    closeSync(fd);
    const exited = (async () => {
      const o = await p;
      return { code: o.exitCode, signal: o.signal as string | null };
    })();
    p.child?.unref();
    const pid = p.pid ?? -1;
    return this.track(name, { pid, startTime: processStartTime(pid), exited }, true);
  }

  /**
   * A `tart run` an earlier process started (and left running on purpose):
   * not our child, so its end is seen by polling its pid. Undefined when
   * that process is gone: no live process with this pid, or one that started
   * at another time (the pid was reused), or no start time recorded.
   */
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

  /** Remembers a VM's run process while it runs, so forceOff can signal it directly. */
  private track(name: string, vm: RunningVm, own: boolean): RunningVm {
    const entry = { ...vm, own };
    this.runs.set(name, entry);
    void vm.exited.then(() => {
      if (this.runs.get(name) === entry) this.runs.delete(name);
    });
    return vm;
  }

  /** `tart ip --wait`: tart's own lease lookup, polled once a second. */
  async ip(name: string, waitS: number): Promise<string> {
    const args = ["ip", name, "--wait", String(Math.min(65535, Math.max(1, Math.ceil(waitS))))];
    const r = await this.call(args, (waitS + 10) * 1000);
    if (r.code !== 0) throw this.fail(name, args, r);
    return r.stdout.trim();
  }

  /** The VM's MAC address as tart stores it (config.json in its directory). */
  macAddress(name: string): string | undefined {
    try {
      const config = JSON.parse(readFileSync(join(this.home, "vms", name, "config.json"), "utf8")) as { macAddress?: unknown };
      return typeof config.macAddress === "string" ? config.macAddress : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Forces a VM off, as `tart stop` does: SIGINT to the VM's run process we
   * know (started or attached) and its process group, SIGKILL after
   * STOP_GRACE_MS. That process may be a wrapper (host.tart_path a script
   * that runs tart as its child) whose end leaves the VM running, or tart may
   * have left the group, so the VM counts as off only when tart says so;
   * while it does not, `tart stop --timeout 0` (tart signals the process
   * that holds the VM's lock), then tart is asked until OFF_WAIT_MS.
   * A VM not running (or missing) counts as off.
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

  /** Whether a run process of ours still runs: our child until reaped; an attached one while its identity holds. */
  private alive(run: RunningVm & { own: boolean }): boolean {
    if (!(run.pid > 1)) return false;
    return run.own || run.startTime === undefined ? isAlive(run.pid) : isSameProcess(run.pid, run.startTime);
  }

  /** Waits (bounded) for a run process to end; our own child is waited for (reaped), another's polled. */
  private async ended(run: RunningVm & { own: boolean }, withinMs: number): Promise<boolean> {
    if (run.own) return await Promise.race([run.exited.then(() => true), sleep(withinMs).then(() => false)]);
    return (await poll(() => (this.alive(run) ? undefined : true), { deadline: Date.now() + withinMs, everyMs: 5 })) === true;
  }

  /** Whether tart shows the VM running (`tart get`: tart holds the VM's lock). A missing VM is not running. */
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

  /**
   * Deletes a VM, retrying briefly while tart still sees it running: a forced
   * stop returns right after its SIGKILL. A missing VM counts as deleted.
   */
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

  async list(): Promise<VmListing[]> {
    return this.listSource("local");
  }

  /** OCI cache entries: `host/ns:tag` links and `host/ns@sha256:…` images. */
  async listCached(): Promise<VmListing[]> {
    return this.listSource("oci");
  }

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

  /** `tart suspend`: the VM's state is saved (state.vzvmsave) and it stops. */
  async suspend(name: string): Promise<void> {
    const args = ["suspend", name];
    const r = await this.call(args, 120_000);
    if (r.code !== 0) throw this.fail(name, args, r);
  }

  /**
   * `tart exec` of `/bin/sh -c command`, with `-i` when there is input
   * (written, then closed: the one way a secret reaches the guest, never
   * argv). Its environment is every tart call's, without the registry
   * credentials. A stop (signal) or kill ends the client with one signal
   * (exec replaced the shell); the command may run on in the guest (the
   * agent kills only its direct child).
   */
  exec(name: string, command: string, o: { input?: string; signal?: AbortSignal } = {}): GuestProcess {
    const args = ["exec", ...(o.input !== undefined ? ["-i"] : []), name, "/bin/sh", "-c", command];
    return guestProcessOf(sh({ env: this.env(), ...(o.input !== undefined && { input: o.input }), ...(o.signal && { signal: o.signal }) })`exec ${this.opts.path} ${args}`);
  }

  /** `tart pull` (credentials only in tart's environment); a large image takes a while. */
  async pull(ref: string, timeoutMs: number): Promise<void> {
    const args = ["pull", ref, ...(this.opts.insecure ? ["--insecure"] : [])];
    const r = await this.call(args, timeoutMs, undefined, { withCredentials: true });
    if (r.code !== 0) throw this.fail(ref, args, r);
  }
}
