// The host's processes, read from /proc: a slot's loop and its children (the
// session's ssh or tart exec client), and a sampler of every process's argv that looks for secrets.
import { readdirSync, readFileSync } from "node:fs";
import { commandLine } from "../../sim/tart/guest/processes.ts";
import type { SecretWatch } from "./secrets.ts";

function pids(): number[] {
  return readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number);
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** Every live descendant of `root`. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of pids()) {
    const ppid = parentOf(pid);
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    for (const c of children.get(todo.pop()!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/**
 * The descendants of `root` that carry the guest runner's session: an `ssh`
 * client (vm.transport ssh), or a `tart exec` whose guest command is the
 * runner's start (vm.transport exec; `exec` is found as an argument, not
 * argv[1]: the sim's tart may be bun running sim/tart/main.ts).
 */
export function sessionClients(root: number): number[] {
  return descendants(root).filter((pid) => {
    const argv = commandLine(pid);
    if (argv[0]?.split("/").pop() === "ssh") return true;
    return argv.includes("exec") && argv.some((a) => a.startsWith("IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG"));
  });
}

export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

export interface ArgvLeak {
  at: string;
  pid: number;
  program: string;
  secrets: string[];
}

/** Whether a process is the soak's: started by it, or running with our tart home in its environment (VMs outlive their loop). */
function isOurs(pid: number, marker: string): boolean {
  if (descendants(process.pid).includes(pid)) return true;
  try {
    return readFileSync(`/proc/${pid}/environ`, "utf8").includes(marker);
  } catch {
    return false;
  }
}

/**
 * Samples the argv of every process of the soak's world (`marker`: a path
 * only its processes carry in their environment, the host's TART_HOME)
 * every `everyMs` for secrets; each leaking process is reported once. Other
 * processes on the machine (other test worlds) are not ours to judge.
 */
export function watchArgv(watch: SecretWatch, marker: string, everyMs = 100): { leaks: ArgvLeak[]; samples(): number; stop(): void } {
  const leaks: ArgvLeak[] = [];
  const seen = new Set<string>();
  let samples = 0;
  const timer = setInterval(() => {
    samples++;
    for (const pid of pids()) {
      if (pid === process.pid) continue;
      const argv = commandLine(pid);
      if (argv.length === 0) continue;
      const secrets = watch.find(argv.join(" "));
      const key = `${pid}:${argv[0]}`;
      if (secrets.length === 0 || seen.has(key) || !isOurs(pid, marker)) continue;
      seen.add(key);
      leaks.push({ at: new Date().toISOString(), pid, program: argv[0] ?? "", secrets });
    }
  }, everyMs);
  return { leaks, samples: () => samples, stop: () => clearInterval(timer) };
}
