// What this process has cost so far: CPU, peak memory and, where /proc
// tells, the CPU of the children it waited for (tart, ssh, zx's shells).
// `loop` logs it when it exits, so each cycle's host CPU is in its log.
import { readdirSync, readFileSync } from "node:fs";

export interface Usage {
  cpu_ms: number;
  /** Children waited for (Linux only; 10 ms resolution). */
  children_cpu_ms?: number;
  max_rss_kb: number;
}

/** Linux's USER_HZ, the unit of /proc/<pid>/stat's times. */
const CLOCK_TICKS_PER_S = 100;

function childrenCpuMs(): number | undefined {
  try {
    // Fields after "(comm)": state is 3rd, cutime and cstime the 16th and 17th.
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** Children not yet reaped (a VM's `tart run` that was just killed), Linux only. */
export function unreapedChildren(): number {
  try {
    return readdirSync("/proc/self/task").reduce((n, tid) => n + readFileSync(`/proc/self/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).length, 0);
  } catch {
    return 0;
  }
}

export function usage(): Usage {
  const { user, system } = process.cpuUsage();
  const children = childrenCpuMs();
  return {
    cpu_ms: Math.round((user + system) / 1000),
    ...(children !== undefined && { children_cpu_ms: children }),
    max_rss_kb: process.resourceUsage().maxRSS,
  };
}
