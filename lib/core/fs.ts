// File helpers shared by the state file, the token cache and the metrics.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

/**
 * Writes via a temp file + rename, so readers see the old or the new content,
 * never half. The file gets exactly `mode`, whatever the umask; a failed
 * write (full disk) leaves no temp file behind and throws. `sync: false`
 * skips the fsync, for files whose loss in a power cut costs nothing (metrics).
 */
export function writeFileAtomic(path: string, content: string, mode = 0o600, opts: { sync?: boolean } = {}): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, "w", mode);
    try {
      fchmodSync(fd, mode);
      writeSync(fd, content);
      if (opts.sync !== false) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
