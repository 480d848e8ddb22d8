// Process liveness that survives pid reuse: on Linux a pid is identified by
// its start time (/proc/<pid>/stat field 22); a zombie counts as dead, as the
// kernel has already released its locks and sockets.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const hasProc = existsSync("/proc/self/stat");

/** After "(comm) " in /proc/<pid>/stat: state, ppid, ... starttime (field 22 of proc(5), index 19); undefined when gone. */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The process's start time token, or undefined when it is gone (or a zombie). */
export function processStartTime(pid: number): string | undefined {
  if (!hasProc) return processAlive(pid) ? "alive" : undefined;
  const fields = statFields(pid);
  if (!fields || fields[0] === "Z" || fields[0] === "X") return undefined;
  return fields[19];
}

/**
 * Gone, or stopped for good: a powered-off guest's processes are frozen
 * (SIGSTOP) until its watchdog kills them, and never run again.
 */
export function processFrozenOrGone(pid: number): boolean {
  if (!processAlive(pid)) return true;
  const state = hasProc ? statFields(pid)?.[0] : spawnSync("/bin/ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).stdout?.trim();
  return state === undefined || /^[Tt]/.test(state);
}

export function processAlive(pid: number): boolean {
  if (hasProc) return processStartTime(pid) !== undefined;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
