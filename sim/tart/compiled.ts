// The simulated tart compiled into one executable (dist/sim/tart, built by
// sim/compiled.ts), so that a `tart` call costs what a native binary's start
// costs and not a shell, a Bun start and a transpile of sim/tart: our loop
// calls tart hundreds of times a test file, and that CPU was what made a slow
// machine miss its deadlines. sim/bin/tart runs it when it is there.
import { join } from "node:path";
import { ensureCompiled } from "../compiled.ts";

declare const SIM_TART_SOURCE: string | undefined;

/** sim/tart on disk, also from inside the compiled executable (whose own files are virtual). */
export const SIM_TART_DIR: string = typeof SIM_TART_SOURCE === "string" ? SIM_TART_SOURCE : import.meta.dir;
/** Whether this process is the compiled executable. */
export const COMPILED = typeof SIM_TART_SOURCE === "string";
/** The first argument that makes the compiled executable one of a running VM's helper processes (main.ts). */
export const GUEST_HELPER = "__sim-guest";
export const WATCHDOG_HELPER = "__sim-watchdog";

/** Builds dist/sim/tart unless it is newer than every file it bundles. */
export function ensureCompiledTart(): string {
  return ensureCompiled("tart", join(SIM_TART_DIR, "main.ts"), { SIM_TART_SOURCE: SIM_TART_DIR });
}
