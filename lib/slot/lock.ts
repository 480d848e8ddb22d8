// A kernel lock on `slot-N.lock`, released when its holder dies (no stale
// locks). `loop` and the step CLIs that change a slot's VM take it.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { MacosRunnerError, StateIoError } from "../core/errors.ts";
import { FileLock } from "../core/flock.ts";

export class SlotBusyError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "tempfail" });
  }
}

export function lockSlot(stateDir: string, slot: number): FileLock {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new StateIoError(`cannot create host.state_dir ${stateDir}: ${(err as Error).message}`, err);
  }
  const path = join(stateDir, `slot-${slot}.lock`);
  const lock = FileLock.tryAcquire(path);
  if (lock) return lock;
  const pid = FileLock.holderPid(path);
  throw new SlotBusyError(`slot ${slot} is in use by another process${pid ? ` (pid ${pid})` : ""} holding ${path}; not starting a second one`);
}
