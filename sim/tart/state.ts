// A VM's state as list/get report it (VMDirectory.state()).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { isRunning } from "./running.ts";

export type VMState = "running" | "suspended" | "stopped";

export function vmState(vmDir: string): VMState {
  if (isRunning(vmDir)) return "running";
  return existsSync(join(vmDir, "state.vzvmsave")) ? "suspended" : "stopped";
}
