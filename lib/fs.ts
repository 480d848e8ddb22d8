// File helpers shared by the state file, the token cache and the lock.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";

/** Writes via a temp file + rename, so readers see the old or the new content, never half. */
export function writeFileAtomic(path: string, content: string, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
