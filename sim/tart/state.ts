// A VM's state as list/get report it (VMDirectory.state()).
import { isRunning } from "./running.ts";
import { isSuspended } from "./vm/snapshot.ts";

export type VMState = "running" | "suspended" | "stopped";

export function vmState(vmDir: string): VMState {
  if (isRunning(vmDir)) return "running";
  return isSuspended(vmDir) ? "suspended" : "stopped";
}
