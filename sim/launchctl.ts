// A simulated `launchctl` for the GUI domain (contracts: launchctl 2): the
// agents it bootstraps run under sim/launchd.ts, each in a supervisor process
// of its own that outlives the `launchctl` call, as launchd does.
//   launchctl print gui/UID            exit 0 (113 when $SIM_LAUNCHD/no-gui exists)
//   launchctl print gui/UID/LABEL      the service's state, pid and last exit code; 113 when not loaded
//   launchctl enable gui/UID/LABEL     exit 0
//   launchctl bootstrap gui/UID PLIST  loads and (RunAtLoad) starts it; EIO (5) while LABEL is loaded
//   launchctl bootout gui/UID/LABEL    returns at once; the job gets SIGTERM, SIGKILL after ExitTimeOut,
//                                      and the label is unloaded once the job is gone
// State lives in $SIM_LAUNCHD: loaded/LABEL (the supervisor's pid) and
// status/LABEL.json (the job's pid and last exit). The GUI session's
// environment, which launchd gives every job before the plist's
// EnvironmentVariables, is $SIM_LAUNCHD/session.json (default: HOME, USER,
// LOGNAME, SHELL, TMPDIR and PATH of the caller). A job that exited stays
// loaded ("not running") until bootout, as with launchd. A supervisor whose
// $SIM_LAUNCHD is removed boots its job out and ends.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readAgentPlist } from "../lib/host/launchd/plist.ts";
import { startAgent } from "./launchd.ts";

declare const SIM_LAUNCHCTL_COMPILED: string | undefined;
/** How to start this launchctl again: the compiled executable (sim/compiled.ts) is its own program. */
const SELF = typeof SIM_LAUNCHCTL_COMPILED === "string" ? [] : [import.meta.path];

const state = process.env.SIM_LAUNCHD;
if (!state) {
  process.stderr.write("sim launchctl: SIM_LAUNCHD (the simulated launchd's state directory) is not set\n");
  process.exit(64);
}
const loadedPath = (label: string) => join(state, "loaded", label);
const statusPath = (label: string) => join(state, "status", `${label}.json`);

interface Status {
  pid?: number | undefined;
  last_exit?: number | undefined;
  spawns: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** The supervisor's pid when LABEL is loaded; a supervisor that died unloaded it. */
function supervisor(label: string): number | undefined {
  try {
    const pid = Number(readFileSync(loadedPath(label), "utf8"));
    if (alive(pid)) return pid;
  } catch {
    return undefined;
  }
  rmSync(loadedPath(label), { force: true });
  return undefined;
}

function readStatus(label: string): Status {
  try {
    return JSON.parse(readFileSync(statusPath(label), "utf8")) as Status;
  } catch {
    return { spawns: 0 };
  }
}

function sessionEnv(): Record<string, string> | undefined {
  try {
    return JSON.parse(readFileSync(join(state!, "session.json"), "utf8")) as Record<string, string>;
  } catch {
    return undefined;
  }
}

const fail = (code: number, message: string): never => {
  process.stderr.write(`${message}\n`);
  process.exit(code);
};

/** The supervisor: runs one agent until bootout (SIGTERM) or until $SIM_LAUNCHD is gone. */
async function supervise(plistPath: string): Promise<void> {
  const label = readAgentPlist(readFileSync(plistPath, "utf8"), plistPath).Label;
  let status: Status = { spawns: 0 };
  const write = (patch: Partial<Status>) => {
    status = { ...status, ...patch };
    writeFileSync(statusPath(label), JSON.stringify(status));
  };
  write({});
  const env = sessionEnv();
  const agent = startAgent(plistPath, {
    ...(env && { env }),
    onSpawn: (pid) => write({ pid, spawns: status.spawns + 1 }),
    onExit: (code, signal) => write({ pid: undefined, last_exit: code ?? 128 + (signal === "SIGKILL" ? 9 : 15) }),
  });
  let ending = false;
  const end = async () => {
    if (ending) return;
    ending = true;
    await agent.bootout();
    rmSync(loadedPath(label), { force: true });
    process.exit(0);
  };
  process.on("SIGTERM", () => void end());
  setInterval(() => existsSync(state!) || void end(), 500);
}

const [verb, target, plist] = process.argv.slice(2);
const service = (t: string | undefined) => /^gui\/\d+\/(.+)$/.exec(t ?? "")?.[1];

switch (verb) {
  case "__supervise":
    await supervise(target!);
    break;
  case "print": {
    const label = service(target);
    if (!label) {
      if (!/^gui\/\d+$/.test(target ?? "")) fail(64, `sim launchctl: unsupported print target ${target}`);
      if (existsSync(join(state, "no-gui"))) fail(113, "Bad request.\nCould not find domain for port identifier.");
      process.stdout.write(`${target} = {\n\ttype = login\n}\n`);
      process.exit(0);
    }
    if (supervisor(label) === undefined) fail(113, `Could not find service "${label}" in domain for user gui: ${target!.split("/")[1]}`);
    const s = readStatus(label);
    const lines = [`${target} = {`, `\tstate = ${s.pid ? "running" : "not running"}`, ...(s.pid ? [`\tpid = ${s.pid}`] : []), `\truns = ${s.spawns}`];
    if (s.last_exit !== undefined) lines.push(`\tlast exit code = ${s.last_exit}`);
    process.stdout.write(`${[...lines, "}"].join("\n")}\n`);
    process.exit(0);
  }
  case "enable":
    process.exit(service(target) ? 0 : 64);
  case "bootstrap": {
    if (!/^gui\/\d+$/.test(target ?? "") || !plist) fail(64, "Usage: launchctl bootstrap gui/<uid> <plist>");
    if (existsSync(join(state, "no-gui"))) fail(125, "Bootstrap failed: 125: Domain does not support specified action");
    let label: string;
    try {
      label = readAgentPlist(readFileSync(plist!, "utf8"), plist!).Label;
    } catch (err) {
      fail(5, `Bootstrap failed: 5: Input/output error (${(err as Error).message})`);
    }
    if (supervisor(label!) !== undefined) fail(5, "Bootstrap failed: 5: Input/output error");
    for (const dir of ["loaded", "status"]) mkdirSync(join(state, dir), { recursive: true });
    rmSync(statusPath(label!), { force: true });
    const child = spawn(process.execPath, [...SELF, "__supervise", plist!], { detached: true, stdio: "ignore", env: process.env });
    writeFileSync(loadedPath(label!), String(child.pid));
    child.unref();
    process.exit(0);
  }
  case "bootout": {
    const label = service(target);
    if (!label) fail(64, "Usage: launchctl bootout gui/<uid>/<label>");
    const pid = supervisor(label!);
    if (pid === undefined) fail(3, "Boot-out failed: 3: No such process");
    process.kill(pid!, "SIGTERM");
    process.exit(0);
  }
  default:
    fail(64, `sim launchctl: unsupported: ${process.argv.slice(2).join(" ")}`);
}
