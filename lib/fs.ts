// File helpers shared by the state file, the token cache and the lock.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

/**
 * Writes via a temp file + rename, so readers see the old or the new content,
 * never half. The file gets exactly `mode`, whatever the umask; a failed
 * write (full disk) leaves no temp file behind. `sync: false` skips the
 * fsync, for files whose loss in a power cut costs nothing (metrics).
 */
export function writeFileAtomic(path: string, content: string, mode = 0o600, opts: { sync?: boolean } = {}): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", mode);
  let written = false;
  try {
    fchmodSync(fd, mode);
    writeSync(fd, content);
    if (opts.sync !== false) fsyncSync(fd);
    written = true;
  } finally {
    closeSync(fd);
    if (!written) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
}
