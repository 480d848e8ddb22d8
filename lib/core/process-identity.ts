// A process is known by pid and start time together: the kernel reuses pids.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

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
