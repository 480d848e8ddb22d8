// A small launchd for the end-to-end tests and the demo: runs one rendered
// agent plist the way launchd runs a LaunchAgent (contracts/tart.md §8).
// - spawns at load when RunAtLoad or KeepAlive asks for it, and every
//   StartInterval seconds when the job is not running;
// - respawns on exit per KeepAlive (bool, or {SuccessfulExit}), never sooner
//   than ThrottleInterval (default 10 s) after the previous spawn;
// - each job leads its own process group; when the job exits, what it left in
//   the group gets SIGTERM unless AbandonProcessGroup;
// - bootout: SIGTERM, SIGKILL after ExitTimeOut (default 20 s), resolves once
//   the process is gone;
// - StandardOutPath/StandardErrorPath are opened for append at every spawn.
// `timeScale` multiplies every interval, so tests can run launchd's seconds fast.
// sim/bin/launchctl (sim/launchctl.ts) runs bootstrapped agents under it, for
// commands that load agents themselves (selftest's one-shot agent).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { readAgentPlist, type AgentPlist } from "../lib/host/launchd/plist.ts";

export interface AgentOptions {
  /** The session environment launchd gives jobs; the plist's EnvironmentVariables are laid over it.
   *  Default: HOME, USER, LOGNAME, SHELL, TMPDIR and PATH of this process. */
  env?: Record<string, string>;
  /** Multiplies ThrottleInterval, StartInterval and ExitTimeOut (e.g. 0.01 in tests). */
  timeScale?: number;
  onSpawn?(pid: number): void;
  onExit?(code: number | null, signal: NodeJS.Signals | null): void;
}

export interface Agent {
  readonly label: string;
  /** PID of the running job, undefined between runs. */
  readonly pid: number | undefined;
  /** How many times the job was started. */
  readonly spawns: number;
  /** Stops the agent: SIGTERM, SIGKILL after ExitTimeOut; resolves once the job has exited. */
  bootout(): Promise<void>;
}

const LAUNCHD_DEFAULT_THROTTLE_S = 10;
const LAUNCHD_DEFAULT_EXIT_TIMEOUT_S = 20;
const SESSION_ENV = ["HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "PATH"];

export function startAgent(plistPath: string, opts: AgentOptions = {}): Agent {
  const plist = readAgentPlist(readFileSync(plistPath, "utf8"), plistPath);
  return new SimAgent(plist, opts);
}

class SimAgent implements Agent {
  readonly label: string;
  spawns = 0;
  private child: ChildProcess | undefined;
  private lastSpawnAt = 0;
  private respawnTimer: ReturnType<typeof setTimeout> | undefined;
  private intervalTimer: ReturnType<typeof setInterval> | undefined;
  private bootedOut = false;
  private exited: Promise<void> = Promise.resolve();
  private readonly scale: number;
  private readonly env: Record<string, string>;

  constructor(
    private readonly plist: AgentPlist,
    private readonly opts: AgentOptions,
  ) {
    this.label = plist.Label;
    this.scale = opts.timeScale ?? 1;
    const session = opts.env ?? Object.fromEntries(SESSION_ENV.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]])));
    // launchd names the job in XPC_SERVICE_NAME; jobs use it to know they are supervised.
    this.env = { ...session, ...plist.EnvironmentVariables, XPC_SERVICE_NAME: plist.Label };
    const keepAlive = plist.KeepAlive;
    // A KeepAlive job must run before launchd can judge its exit, so it starts at load too.
    if (plist.RunAtLoad || keepAlive === true || typeof keepAlive === "object") this.spawnJob();
    if (plist.StartInterval) {
      this.intervalTimer = setInterval(() => this.child || this.respawnTimer || this.spawnJob(), plist.StartInterval * 1000 * this.scale);
    }
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private spawnJob(): void {
    this.respawnTimer = undefined;
    if (this.bootedOut) return;
    const { ProgramArguments: argv, StandardOutPath: out, StandardErrorPath: err } = this.plist;
    const outFd = out ? openSync(out, "a") : "ignore";
    const errFd = err ? (err === out ? outFd : openSync(err, "a")) : "ignore";
    this.spawns++;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.plist.WorkingDirectory ?? "/",
      env: this.env,
      stdio: ["ignore", outFd, errFd],
      detached: true, // its own process group, like a launchd job
    });
    this.lastSpawnAt = Date.now();
    for (const fd of new Set([outFd, errFd])) if (typeof fd === "number") closeSync(fd);
    this.child = child;
    let resolveExited!: () => void;
    this.exited = new Promise((r) => (resolveExited = r));
    let reaped = false;
    const reap = (code: number | null, signal: NodeJS.Signals | null) => {
      if (reaped) return;
      reaped = true;
      if (!this.plist.AbandonProcessGroup && child.pid) killGroup(child.pid);
      this.child = undefined;
      this.opts.onExit?.(code, signal);
      if (!this.bootedOut && this.shouldRespawn(code)) this.scheduleRespawn();
      resolveExited();
    };
    // exec failed (no such program): launchd logs it and treats it as an exit with an error.
    child.once("error", () => reap(127, null));
    child.once("exit", reap);
    if (child.pid) this.opts.onSpawn?.(child.pid);
  }

  private shouldRespawn(code: number | null): boolean {
    const keepAlive = this.plist.KeepAlive;
    if (keepAlive === undefined || keepAlive === false) return false;
    if (keepAlive === true || keepAlive.SuccessfulExit === undefined) return true;
    return keepAlive.SuccessfulExit === (code === 0);
  }

  private scheduleRespawn(): void {
    const throttleMs = (this.plist.ThrottleInterval ?? LAUNCHD_DEFAULT_THROTTLE_S) * 1000 * this.scale;
    const wait = Math.max(0, this.lastSpawnAt + throttleMs - Date.now());
    this.respawnTimer = setTimeout(() => this.spawnJob(), wait);
  }

  async bootout(): Promise<void> {
    this.bootedOut = true;
    clearTimeout(this.respawnTimer);
    clearInterval(this.intervalTimer);
    this.respawnTimer = undefined;
    const child = this.child;
    if (!child) return this.exited;
    child.kill("SIGTERM");
    const exitTimeoutS = this.plist.ExitTimeOut ?? LAUNCHD_DEFAULT_EXIT_TIMEOUT_S;
    // ExitTimeOut 0 means launchd waits forever.
    const killer = exitTimeoutS > 0 ? setTimeout(() => child.kill("SIGKILL"), exitTimeoutS * 1000 * this.scale) : undefined;
    await this.exited;
    clearTimeout(killer);
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGTERM");
  } catch {
    // ESRCH: nothing left in the group.
  }
}
