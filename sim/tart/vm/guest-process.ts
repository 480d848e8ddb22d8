// The two helper processes of a running VM, both detached from `tart run`'s
// process group: the power watchdog (guest/watchdog.ts), which holds a pipe
// from `tart run` and freezes the guest the moment `tart run` is gone, and the
// guest OS (guest/main.ts), whose events arrive as JSON lines on its stdout.
// The watchdog carries the VM's MAC in its arguments.
import { spawn } from "node:child_process";
import { openSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { POWER_MARKER, VM_MARKER } from "../guest/env.ts";
import type { GuestEvent } from "../guest/main.ts";
import { commandLine, markedProcesses } from "../guest/processes.ts";
import { sleep } from "../home.ts";
import { placePath } from "../places.ts";
import { processStartTime } from "../process.ts";
import { COMPILED, GUEST_HELPER, SIM_TART_DIR, WATCHDOG_HELPER } from "../compiled.ts";

const GUEST_DIR = join(SIM_TART_DIR, "guest");
/** The compiled tart runs the helpers from its own bundle; else bun runs their .ts files. */
const helperArgv = (helper: string, file: string, args: string[]) => (COMPILED ? [helper, ...args] : [join(GUEST_DIR, file), ...args]);
export const GUEST_LOG = ".sim-guest.log";

function hostEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== VM_MARKER) env[k] = v;
  return env;
}

export function spawnWatchdog(vmDir: string, mac: string, deadPeerMs: number, placeReleaseMs: number): void {
  const child = spawn(process.execPath, helperArgv(WATCHDOG_HELPER, "watchdog.ts", [vmDir, mac, String(deadPeerMs), placePath(process.pid), String(placeReleaseMs)]), {
    env: { ...hostEnv(), [POWER_MARKER]: vmDir },
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.unref();
}

export interface GuestHandlers {
  onEvent(event: GuestEvent): void;
  /** The guest process ended without a shutdown event. */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/**
 * Ends the frozen guests of earlier runs of this VM that had this MAC: they
 * hold the address this run gets again, and a real peer would hear a reset
 * from the new guest. Their watchdogs kill them; this waits until they have.
 */
export async function endPredecessors(vmDir: string, mac: string): Promise<void> {
  const watchdogs = markedProcesses((v) => v === vmDir, POWER_MARKER).filter((w) => commandLine(w.pid).includes(mac));
  for (const w of watchdogs) process.kill(w.pid, "SIGTERM");
  for (let waited = 0; waited < 2000 && watchdogs.some((w) => processStartTime(w.pid) === w.start); waited += 10) await sleep(10);
}

/** Starts the guest OS; its stderr goes to <vm dir>/.sim-guest.log. */
export function spawnGuest(vmDir: string, mode: "boot" | "resume", leaseAt: number, handlers: GuestHandlers): void {
  const log = openSync(join(vmDir, GUEST_LOG), "a");
  const child = spawn(process.execPath, helperArgv(GUEST_HELPER, "main.ts", [vmDir, mode, String(leaseAt)]), {
    env: { ...hostEnv(), [VM_MARKER]: vmDir },
    detached: true,
    stdio: ["ignore", "pipe", log],
  });
  let shutDown = false;
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const event = JSON.parse(line) as GuestEvent;
    if ("shutdown" in event) shutDown = true;
    handlers.onEvent(event);
  });
  // "close", not "exit": the shutdown event on stdout must be read first.
  child.on("close", (code, signal) => {
    if (!shutDown) handlers.onExit(code, signal);
  });
}
