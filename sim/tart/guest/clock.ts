// The guest's clock. A restored guest resumes at its snapshot's time (§11a),
// which the sim marks with a file holding that time (epoch ms); the guest's
// `sntp -sS <server>` run as root (guest/bin/sntp) removes it. A cold boot
// starts with the host's time: no file. The `clock_stuck` fault makes every
// time server unreachable from the guest (a marker beside the clock file, read
// by guest/bin/sntp), so the clock stays as it is.
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

const ntpUnreachableFile = (vmDir: string) => join(dirname(clockFile(vmDir)), "sim-ntp-unreachable");

/** With the clock_stuck fault this run of the VM reaches no time server. */
export function setNtpReachable(vmDir: string, reachable: boolean): void {
  if (reachable) return rmSync(ntpUnreachableFile(vmDir), { force: true });
  mkdirSync(dirname(ntpUnreachableFile(vmDir)), { recursive: true });
  writeFileSync(ntpUnreachableFile(vmDir), "");
}
