// Sizes tart reports: the disk's apparent size (kept in config.json by the sim,
// since disk.img is a directory) and the bytes a VM's files really occupy.
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readVMConfig } from "./home.ts";

/** A running guest adds and removes files under disk.img while this walks it: one gone meanwhile counts 0. */
export function allocatedBytes(path: string): number {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  let total = st.blocks * 512;
  if (st.isDirectory()) {
    let entries: string[] = [];
    try {
      entries = readdirSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    for (const e of entries) total += allocatedBytes(join(path, e));
  }
  return total;
}

export const diskBytes = (vmDir: string) => readVMConfig(vmDir).simDiskSize ?? 0;

export const GB = 1e9;
