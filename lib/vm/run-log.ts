// The slot's VM log (`tart run`'s output, appended): what a run wrote since an
// offset tells why a detached `tart run` ended or what it did.
import { closeSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/index.ts";

export function vmLogPath(config: Config, slot: number): string {
  mkdirSync(config.host.logDir, { recursive: true });
  return join(config.host.logDir, `slot-${slot}.vm.log`);
}

/** 0 when the file does not exist. */
export function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** What was written after `offset` (the last 4 KiB at most), trimmed. */
export function readTail(path: string, offset: number): string {
  try {
    const fd = openSync(path, "r");
    try {
      const size = statSync(path).size;
      const start = Math.max(offset, size - 4096);
      const buf = Buffer.alloc(Math.max(0, size - start));
      readSync(fd, buf, 0, buf.length, start);
      return buf.toString("utf8").trim();
    } finally {
      closeSync(fd);
    }
  } catch {
    return "";
  }
}
