// Finding a guest's processes on the host: every process whose environment
// carries the VM marker (SIM_TART_VM=<vm dir>, set for the guest and
// inherited by all it starts, whatever their process group or session), plus
// every descendant of one (a process that cleared its environment). One run
// of a VM is told from an earlier one's frozen guest by start time: its
// processes all started after its `tart run`. Read from /proc, so this works
// on Linux only, where the sim runs.
import { readdirSync, readFileSync } from "node:fs";
import { statFields } from "../process.ts";
import { VM_MARKER } from "./env.ts";

export interface Proc {
  pid: number;
  /** /proc start time: a pid is only killed while it still names the same process. */
  start: string;
}

interface Entry extends Proc {
  ppid: number;
  state: string;
  env: string[];
}

function readEntry(pid: number): Entry | undefined {
  const fields = statFields(pid);
  const [state, ppid] = fields ?? [];
  const start = fields?.[19];
  if (state === undefined || ppid === undefined || start === undefined) return undefined;
  let env: string[] = [];
  try {
    env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  } catch {}
  return { pid, ppid: Number(ppid), state, start, env };
}

function allEntries(): Entry[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .flatMap((n) => readEntry(Number(n)) ?? []);
}

/** This process's start time (clock ticks since boot): the `since` of what it started. */
export const ownStart = () => Number(readEntry(process.pid)?.start ?? 0);

/**
 * Live (not zombie) processes marked `<name>=<value>` with `match(value)`,
 * and their descendants, started at or after `since` (clock ticks since
 * boot); never the caller.
 */
export function markedProcesses(match: (value: string) => boolean, name = VM_MARKER, since = 0): Entry[] {
  const entries = allEntries().filter((e) => e.state !== "Z" && e.state !== "X" && e.pid !== process.pid && Number(e.start) >= since);
  const prefix = `${name}=`;
  const found = new Set(entries.filter((e) => e.env.some((v) => v.startsWith(prefix) && match(v.slice(prefix.length)))).map((e) => e.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const e of entries) {
      if (!found.has(e.pid) && found.has(e.ppid)) {
        found.add(e.pid);
        grew = true;
      }
    }
  }
  return entries.filter((e) => found.has(e.pid));
}

/** A process's arguments, empty when it is gone. */
export function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
}

function signal(p: Proc, sig: NodeJS.Signals): void {
  if (readEntry(p.pid)?.start !== p.start) return;
  try {
    process.kill(p.pid, sig);
  } catch {}
}

/**
 * Powers the guest off without a word to its peers: SIGSTOPs all its
 * processes started since `since` (again, until a scan finds none running,
 * as one may be forking) and returns them; their sockets stay open and
 * nothing answers.
 */
export function freezeGuest(vmDir: string, since: number): Proc[] {
  const frozen = new Map<number, Proc>();
  for (let round = 0; round < 10; round++) {
    const found = markedProcesses((v) => v === vmDir, VM_MARKER, since);
    for (const e of found) frozen.set(e.pid, { pid: e.pid, start: e.start });
    const running = found.filter((e) => e.state !== "T" && e.state !== "t");
    if (running.length === 0) break;
    for (const e of running) signal(e, "SIGSTOP");
  }
  return [...frozen.values()];
}

export function killProcesses(procs: Proc[]): void {
  for (const p of procs) signal(p, "SIGKILL");
}

/** SIGKILLs, until none is left, every process matched (see markedProcesses). */
export function killMarked(match: (value: string) => boolean, name = VM_MARKER, since = 0): void {
  for (let round = 0; round < 10; round++) {
    const left = markedProcesses(match, name, since);
    if (left.length === 0) return;
    for (const e of left) signal(e, "SIGSTOP");
    killProcesses(left);
  }
}
