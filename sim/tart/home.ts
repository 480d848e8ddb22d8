// $TART_HOME layout (contracts/tart.md §1): vms/<name>/{config.json,disk.img,nvram.bin}
// and cache/OCIs/<host%3Aport>/<ns>/<tag> -> sha256:<hex>/. In the sim a VM's
// disk.img is a directory: the guest's filesystem.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { TartError, vmDoesNotExist } from "./errors.ts";

export function tartHome(): string {
  const home = process.env.TART_HOME || join(homedir(), ".tart");
  try {
    mkdirSync(home, { recursive: true });
  } catch (err) {
    throw new TartError(`TART_HOME is invalid: ${(err as Error).message}`);
  }
  return home;
}

export const vmsDir = () => join(tartHome(), "vms");
export const vmPath = (name: string) => join(vmsDir(), name);
export const ociCacheDir = () => join(tartHome(), "cache", "OCIs");
export const tmpDir = () => join(tartHome(), "tmp");
export const simDir = () => join(tartHome(), "sim");

export const VM_FILES = ["config.json", "disk.img", "nvram.bin"] as const;

export interface VMConfig {
  version: number;
  os: string;
  arch: string;
  cpuCountMin: number;
  cpuCount: number;
  memorySizeMin: number;
  memorySize: number;
  macAddress: string;
  display: { width: number; height: number; unit?: string };
  displayRefit?: boolean;
  diskFormat: string;
  ecid: string;
  hardwareModel: string;
  /** Sim only: the apparent size of disk.img in bytes (the disk is a directory here). */
  simDiskSize: number;
  [key: string]: unknown;
}

export function isVMDir(dir: string): boolean {
  return VM_FILES.every((f) => existsSync(join(dir, f)));
}

/** The directory of an existing local VM, or the RuntimeError tart throws (exit 2). */
export function openLocalVM(name: string): string {
  const dir = vmPath(name);
  if (!existsSync(dir)) throw vmDoesNotExist(name);
  if (!isVMDir(dir)) throw new TartError("VM is missing some of its files (config.json, disk.img or nvram.bin)");
  return dir;
}

export function localVMNames(): string[] {
  const dir = vmsDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isVMDir(join(dir, e.name)))
    .map((e) => e.name)
    .sort();
}

export function readVMConfig(dir: string): VMConfig {
  return JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as VMConfig;
}

/** Pretty JSON like tart's encoder; written atomically so readers never see half a file. */
export function writeVMConfig(dir: string, config: VMConfig): void {
  const tmp = join(dir, `.config.json.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(config, null, 2));
  renameSync(tmp, join(dir, "config.json"));
}

/** A locally administered unicast MAC, like VZMACAddress.randomLocallyAdministered(). */
export function randomMAC(): string {
  const b = randomBytes(6);
  b.writeUInt8((b.readUInt8(0) & 0xfc) | 0x02, 0);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** A moment already past is no wait (and no TimeoutNegativeWarning in the guest log). */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
