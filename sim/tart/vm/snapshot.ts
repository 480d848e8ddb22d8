// state.vzvmsave, a suspended VM's saved state (§11a). Tart's is an encrypted
// VZ snapshot; the sim's is JSON: when it was taken, whether the guest had
// finished booting, and the hardware it was taken with. VZ refuses to restore
// a state into other hardware, so a `tart set` of a suspended VM (MAC, serial,
// CPU, memory, and, taking the harsher reading, display and disk) makes the
// state unusable.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readVMConfig, type VMConfig } from "../home.ts";

export const statePath = (vmDir: string) => join(vmDir, "state.vzvmsave");

export const isSuspended = (vmDir: string) => existsSync(statePath(vmDir));

interface Snapshot {
  savedAt: number;
  booted: boolean;
  hardware: string;
}

const hardware = (c: VMConfig) =>
  JSON.stringify([c.macAddress, c.ecid, c.hardwareModel, c.cpuCount, c.memorySize, c.display, c.simDiskSize]);

export function saveSnapshot(vmDir: string, booted: boolean): void {
  const snapshot: Snapshot = { savedAt: Date.now(), booted, hardware: hardware(readVMConfig(vmDir)) };
  writeFileSync(statePath(vmDir), JSON.stringify(snapshot));
}

/** The saved state if it can be restored into the VM as it is now. */
export function restorableSnapshot(vmDir: string): Snapshot | undefined {
  try {
    const snapshot = JSON.parse(readFileSync(statePath(vmDir), "utf8")) as Snapshot;
    return snapshot.hardware === hardware(readVMConfig(vmDir)) ? snapshot : undefined;
  } catch {
    return undefined;
  }
}
