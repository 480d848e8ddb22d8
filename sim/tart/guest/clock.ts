// The guest's clock. A restored guest resumes at its snapshot's time (§11a),
// which the sim marks with a file holding that time (epoch ms); the guest's
// `sntp -sS <server>` run as root (guest/bin/sntp) removes it. A cold boot
// starts with the host's time: no file.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { guestRoot } from "./fs.ts";

export const clockFile = (vmDir: string) => join(guestRoot(vmDir), "private", "var", "db", "sim-clock-stale");

export function markClockStale(vmDir: string, snapshotTime: number): void {
  mkdirSync(dirname(clockFile(vmDir)), { recursive: true });
  writeFileSync(clockFile(vmDir), `${snapshotTime}\n`);
}

export function clockInSync(vmDir: string): void {
  rmSync(clockFile(vmDir), { force: true });
}
