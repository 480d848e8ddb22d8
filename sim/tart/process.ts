// Process liveness that survives pid reuse: on Linux a pid is identified by
// its start time (/proc/<pid>/stat field 22); a zombie counts as dead, as the
// kernel has already released its locks and sockets.
import { existsSync, readFileSync } from "node:fs";

const hasProc = existsSync("/proc/self/stat");

/** The process's start time token, or undefined when it is gone (or a zombie). */
export function processStartTime(pid: number): string | undefined {
  if (!hasProc) return processAlive(pid) ? "alive" : undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
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
