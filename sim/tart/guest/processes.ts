// Guest processes run in their own process groups, recorded in a file in the
// VM directory so that they can all be killed when the VM ends, including by
// the watchdog after the run process itself was SIGKILLed.
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const PGID_FILE = ".sim-guest-pgids";

export const pgidFile = (vmDir: string) => join(vmDir, PGID_FILE);

export function trackGuestProcess(vmDir: string, pgid: number): void {
  appendFileSync(pgidFile(vmDir), `${pgid}\n`);
}

export function resetGuestProcesses(vmDir: string): void {
  writeFileSync(pgidFile(vmDir), "");
}

/** SIGKILLs every recorded process group; the VM is powered off. */
export function killGuestProcesses(file: string): void {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return;
  }
  for (const pgid of new Set(text.split("\n").filter(Boolean).map(Number))) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {}
  }
  try {
    writeFileSync(file, "");
  } catch {}
}
