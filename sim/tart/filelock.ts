// A cross-process mutex for short critical sections (fault counters, leases,
// the VM-limit check): an O_EXCL lock file holding the owner's pid; a lock
// whose owner is dead is taken over.
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { processAlive } from "./process.ts";

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
      if (owner > 0 && !processAlive(owner)) {
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
