// What this process has cost so far, logged by `loop` when it exits.
import { readdirSync, readFileSync } from "node:fs";

export interface Usage {
  cpu_ms: number;
  /** Children waited for (Linux only; 10 ms resolution). */
  children_cpu_ms?: number;
  max_rss_kb: number;
}

/** Linux's USER_HZ. */
const CLOCK_TICKS_PER_S = 100;

function childrenCpuMs(): number | undefined {
  try {
    // cutime and cstime: the 16th and 17th fields after "(comm)".

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
