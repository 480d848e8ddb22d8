// Apple's VM places (at most two VMs at once, §3). Virtualization.framework
// holds a VM's place for a while after its `tart run` has exited (it tears the
// VM down after), and macOS 26.3 can leak places that only a reboot frees.
// A place is a file $TART_HOME/sim/places/<pid>.json, written by `tart run`
// when its VM starts, and stamped with the time the place frees,
// place_release_ms after the run process ends: by `tart run` as it exits, and
// by the VM's power watchdog (guest/watchdog.ts), which sees the run process
// end at once however it ends (a SIGKILL too). Leaked places are the setting
// `leaked_places`: held by no process, freed by removing the setting (the
// host's reboot).
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../lib/core/fs.ts";
import { simDir } from "./home.ts";
import { processStartTime } from "./process.ts";

interface Place {
  vm: string;
  pid: number;
  start: string;
  /** Epoch ms when the place frees, stamped once the run process has ended. */
  frees_at?: number;
}

const placesDir = () => join(simDir(), "places");
export const placePath = (pid: number) => join(placesDir(), `${pid}.json`);

function read(path: string): Place | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Place;
  } catch {
    return undefined;
  }
}

/** Takes a place for this process's VM (under the caller's $TART_HOME lock). */
export function takePlace(vm: string): void {
  mkdirSync(placesDir(), { recursive: true });
  const place: Place = { vm, pid: process.pid, start: processStartTime(process.pid) ?? "" };
  writeFileAtomic(placePath(process.pid), JSON.stringify(place), 0o644, { sync: false });
}

/** Gives a place up at once: the VM never started (a failure before VZ's start). */
export function dropPlace(): void {
  try {
    unlinkSync(placePath(process.pid));
  } catch {}
}

/** Stamps a place whose run process has ended: it frees `releaseMs` from now. */
export function releasePlace(path: string, releaseMs: number): void {
  const place = read(path);
  if (!place || place.frees_at !== undefined) return;
  // Whole or not at all: `tart stop` SIGKILLs a run right after its SIGINT, maybe mid-write.
  writeFileAtomic(path, JSON.stringify({ ...place, frees_at: Date.now() + releaseMs }), 0o644, { sync: false });
}

/**
 * How many places VMs hold now, this process's aside: running VMs and VMs
 * still being torn down. A place whose process ended unseen (its watchdog
 * killed too) is stamped now: the harsher reading. Freed places are removed.
 */
export function heldPlaces(releaseMs: number): number {
  let held = 0;
  let names: string[];
  try {
    names = readdirSync(placesDir());
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.endsWith(".json")) continue; // a writer's temporary file
    const path = join(placesDir(), name);
    const place = read(path);
    if (!place || place.pid === process.pid) continue;
    if (processStartTime(place.pid) === place.start) {
      held++;
      continue;
    }
    if (place.frees_at === undefined) releasePlace(path, releaseMs);
    if ((read(path)?.frees_at ?? 0) > Date.now()) held++;
    else {
      try {
        unlinkSync(path);
      } catch {}
    }
  }
  return held;
}
