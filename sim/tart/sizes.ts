// Sizes tart reports: the disk's apparent size (kept in config.json by the sim,
// since disk.img is a directory) and the bytes a VM's files really occupy.
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readVMConfig } from "./home.ts";

export function allocatedBytes(path: string): number {
  const st = lstatSync(path);
  let total = st.blocks * 512;
  if (st.isDirectory()) for (const e of readdirSync(path)) total += allocatedBytes(join(path, e));
  return total;
}

export const diskBytes = (vmDir: string) => readVMConfig(vmDir).simDiskSize ?? 0;

export const GB = 1e9;
