import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

/** Readers see old or new, never half; exactly `mode` whatever the umask; `sync: false` for files cheap to lose. */
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
