// A cross-process mutex for short critical sections (fault counters, leases,
// the VM-limit check): an O_EXCL lock file holding the owner's pid; a lock
// whose owner is dead is taken over, and so is one that never got a pid (its
// owner was killed between creating and writing it). tart's own locks are
// flock(2), released by the kernel when the holder dies: never one left held.
// A frozen holder (a guest powered off mid-section) counts as dead: the host's
// bootpd and tart hold these, and a powered-off guest holds nothing on the host.
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { processFrozenOrGone } from "./process.ts";

/** A lock file without a pid this long after it was made lost its owner before the pid was written. */
const PID_WRITE_GRACE_MS = 1000;

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export function withFileLock<T>(path: string, fn: () => T, timeoutMs = 10_000): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let owner = NaN;
      try {
        owner = Number(readFileSync(path, "utf8"));
      } catch {
        continue; // released between open and read
      }
      const orphaned = !(owner > 0) && Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > PID_WRITE_GRACE_MS;
      if ((owner > 0 && processFrozenOrGone(owner)) || orphaned) {
        try {
          unlinkSync(path);
        } catch {}
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path} held by pid ${owner}`);
      sleepSync(5);
    }
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(path);
    } catch {}
  }
}
