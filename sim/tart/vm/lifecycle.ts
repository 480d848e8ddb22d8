// A VM's life inside `tart run` (Run.swift, VM.swift; contracts §3, §11a):
// restore or boot, the guest's events, and the signals that end it. Every
// power-off but the guest's own shutdown freezes the guest, so its TCP peers
// hear nothing; the watchdog kills it dead_peer_ms later.
import { rmSync } from "node:fs";
import { readVMConfig, sleep } from "../home.ts";
import { takeFault } from "../faults.ts";
import { placePath, releasePlace } from "../places.ts";
import { releaseRunMarker, updateRunMarker } from "../running.ts";
import type { Fault, SimTartSettings } from "../settings.ts";
import { clockInSync, markClockStale, setNtpReachable } from "../guest/clock.ts";
import { freezeGuest, ownStart } from "../guest/processes.ts";
import { endPredecessors, GUEST_LOG, spawnGuest, spawnWatchdog } from "./guest-process.ts";
import { isSuspended, restorableSnapshot, saveSnapshot, statePath } from "./snapshot.ts";
import { traceTart } from "../trace.ts";

import { CRASH, NOT_PAUSABLE, NOT_SUSPENDABLE, RESTORE_FAILED } from "../messages.ts";

export interface VMRun {
  name: string;
  dir: string;
  settings: SimTartSettings;
  /** Run with --suspendable, or restored from a snapshot. */
  suspendable: boolean;
  /** The crash fault armed for this VM, if any. */
  crash?: Fault | undefined;
  noIP: boolean;
}

export async function runVM(vm: VMRun): Promise<never> {
  const { name, dir, settings } = vm;
  let phase: "restoring" | "running" | "ending" = "running";
  let stopAfterRestore = false;
  let booted = false;
  // The watchdog stamps the VM's place when this process ends, however it ends; an
  // exit stamps it first: a signal to tart's process group can kill a watchdog
  // still being spawned (before its setsid), and a run can end before it has one.
  function exit(code: number): never {
    releasePlace(placePath(process.pid), settings.place_release_ms);
    releaseRunMarker(dir);
    process.exit(code);
  }

  const end = async (code: number, message: string, opts: { stderr?: boolean; delayMs?: number } = {}) => {
    if (phase === "ending") return;
    phase = "ending";
    freezeGuest(dir, ownStart());
    (opts.stderr ? process.stderr : process.stdout).write(`${message}\n`);
    if (opts.delayMs) await sleep(opts.delayMs);
    exit(code);
  };
  const stop = () => {
    traceTart(); // `tart stop -t 0` follows its SIGINT with a SIGKILL: no exit hook runs
    // VZ's restore cannot be cancelled: the stop waits until it is done.
    if (phase === "restoring") stopAfterRestore = true;
    else void end(0, "Stopping VM...", { delayMs: settings.stop_ms });
  };
  const suspend = async () => {
    if (phase === "ending") return;
    if (!vm.suspendable || phase === "restoring") return await end(1, vm.suspendable ? NOT_PAUSABLE : NOT_SUSPENDABLE);
    phase = "ending";
    console.log("pausing VM to take a snapshot...");
    freezeGuest(dir, ownStart());
    console.log("creating a snapshot...");
    await sleep(settings.suspend_ms);
    saveSnapshot(dir, booted);
    // The VM is paused, so no "Stopping VM..." (VM.run() prints it only for a running VM).
    console.log("snapshot created successfully! shutting down the VM...");
    exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGUSR1", () => void suspend());
  // A macOS guest answers requestStop() with a dialog nobody clicks.
  process.on("SIGUSR2", () => console.log("Requesting guest OS to stop..."));
  setInterval(() => {}, 1 << 30);
  const mac = readVMConfig(dir).macAddress;
  await endPredecessors(dir, mac);
  spawnWatchdog(dir, mac, settings.dead_peer_ms, settings.place_release_ms);

  let mode: "boot" | "resume" = "boot";
  setNtpReachable(dir, !takeFault("clock_stuck", name));
  // restore_cold: the saved state is dropped without a word and the VM boots cold [U].
  if (isSuspended(dir) && takeFault("restore_cold", name)) rmSync(statePath(dir));
  if (isSuspended(dir)) {
    phase = "restoring";
    console.log("restoring VM state from a snapshot...");
    await sleep(settings.restore_ms);
    const snapshot = takeFault("restore_failure", name) ? undefined : restorableSnapshot(dir);
    if (!snapshot) {
      // The state file stays: the VM stays suspended and fails the same way next time.
      process.stderr.write(`${RESTORE_FAILED}\n`);
      exit(1);
    }
    rmSync(statePath(dir));
    console.log("resuming VM...");
    phase = "running";
    markClockStale(dir, snapshot.savedAt);
    if (snapshot.booted) mode = "resume";
    if (stopAfterRestore) stop();
  } else {
    clockInSync(dir);
  }

  if (!vm.noIP && phase === "running") {
    const leaseAt = mode === "resume" ? Date.now() : performance.timeOrigin + settings.boot_ms;
    spawnGuest(dir, mode, leaseAt, {
      onEvent(event) {
        if ("lease" in event) updateRunMarker(dir, { ip: event.lease });
        if ("ssh" in event) {
          traceTart();
          booted = true;
          updateRunMarker(dir, { booted: true });
          const crash = vm.crash;
          if (crash) setTimeout(() => void end(0, `guest has stopped the virtual machine due to error: ${CRASH}`), crash.after_ms ?? 0);
        }
        if ("agent" in event) updateRunMarker(dir, { agent: true });
        if ("shutdown" in event) void end(0, "guest has stopped the virtual machine");
      },
      onExit(code, signal) {
        if (phase === "ending") return;
        process.stderr.write(`sim: the guest process ended (${signal ?? `exit ${code}`}); see ${dir}/${GUEST_LOG}\n`);
        void end(0, `guest has stopped the virtual machine due to error: ${CRASH}`);
      },
    });
  }
  return await new Promise<never>(() => {});
}
