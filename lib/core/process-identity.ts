// A process is known by its pid and its start time together: a pid alone is
// reused by the kernel once its process ends (after a reboot, or in a busy
// hour), so a pid recorded earlier may name another process by now. On Linux
// the start time is field 22 of /proc/PID/stat (clock ticks since boot); on
// macOS `ps -o lstart=` (the start date, to the second).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const hasProc = existsSync("/proc/self/stat");

/**
 * The start time of a live process, as an opaque token to compare; undefined
 * when the pid names no live process (a zombie, dead but not reaped, counts
 * as gone).
 */
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

/** Whether the process started at `startTime` with this pid still runs. */
export function isSameProcess(pid: number, startTime: string): boolean {
  return processStartTime(pid) === startTime;
}

/**
 * Whether a live process of ours has this pid (another user's answers EPERM:
 * not our `tart run`). A zombie, dead but not yet reaped by whoever adopted
 * it, answers kill(0) too: where /proc tells, it counts as dead.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // Without /proc (macOS) kill(0) is the answer; with it, a zombie has no start time.
  return !hasProc || processStartTime(pid) !== undefined;
}
