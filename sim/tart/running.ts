// The "running" marker (tart holds an fcntl lock on config.json instead): a
// file in the VM directory naming the `tart run` pid and its start time. It is
// only believed while that very process lives, so SIGKILL releases it too.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../lib/core/fs.ts";
import { processStartTime } from "./process.ts";

export const RUN_MARKER = ".sim-running";

export interface RunState {
  pid: number;
  start: string;
  /** The guest's address, once it has a lease. */
  ip?: string;
  /** Set once the guest has booted: its sshd answers on `ip`. */
  booted?: boolean;
  /** Set once the guest agent answers `tart exec` (through the VM's control socket). */
  agent?: boolean;
}

function readMarker(vmDir: string): RunState | undefined {
  try {
    return JSON.parse(readFileSync(join(vmDir, RUN_MARKER), "utf8")) as RunState;
  } catch {
    return undefined;
  }
}

/** The live run process's state, or undefined when the VM is not running. */
export function runState(vmDir: string): RunState | undefined {
  const state = readMarker(vmDir);
  if (!state || processStartTime(state.pid) !== state.start) return undefined;
  return state;
}

export const isRunning = (vmDir: string) => runState(vmDir) !== undefined;

/** Marks the VM as run by this process; false when another live process holds it. */
export function acquireRunMarker(vmDir: string): boolean {
  const path = join(vmDir, RUN_MARKER);
  const state: RunState = { pid: process.pid, start: processStartTime(process.pid) ?? "" };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, JSON.stringify(state));
      closeSync(fd);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (runState(vmDir)) return false;
      try {
        unlinkSync(path); // stale: its process is gone
      } catch {}
    }
  }
  return false;
}

export function updateRunMarker(vmDir: string, patch: Partial<RunState>): void {
  const state = { ...readMarker(vmDir)!, ...patch };
  writeFileAtomic(join(vmDir, RUN_MARKER), JSON.stringify(state), 0o644, { sync: false });
}

export function releaseRunMarker(vmDir: string): void {
  const state = readMarker(vmDir);
  if (state?.pid !== process.pid) return;
  try {
    unlinkSync(join(vmDir, RUN_MARKER));
  } catch {}
}
