// Timing and CPU trace for benchmarks: with $SIM_TART_TRACE naming a file,
// every tart process appends its CPU time when it ends (a `tart run` also
// when its guest is up and when it is told to stop, as a SIGKILL gives no
// exit), and the guest appends when it takes its lease, when its sshd
// answers and when an exec request arrives. One JSON object per line, host
// time in ms; the last line of a pid is its total. Off (no file) by default.
import { appendFileSync } from "node:fs";

export type TraceEvent =
  | { kind: "tart"; cmd: string; args: string[]; pid: number; ppid: number; started_ms: number; cpu_us: number }
  | { kind: "guest"; vm: string; event: "lease" | "ssh" | "agent" | "exec" | "tart-exec" | "connect" | "refused"; peer?: string; ours?: boolean; ip?: string; command?: string };

export function trace(event: TraceEvent): void {
  const file = process.env.SIM_TART_TRACE;
  if (!file) return;
  try {
    appendFileSync(file, `${JSON.stringify({ at_ms: Date.now(), ...event })}\n`);
  } catch {
    // a benchmark aid never breaks the sim
  }
}

/** This tart process: its command and arguments, when it started, its CPU so far (user + system). */
export function traceTart(): void {
  const [cmd = "", ...args] = process.argv.slice(2);
  const { user, system } = process.cpuUsage();
  trace({ kind: "tart", cmd, args, pid: process.pid, ppid: process.ppid, started_ms: Math.round(performance.timeOrigin), cpu_us: user + system });
}
