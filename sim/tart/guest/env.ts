// The environment of every process in the simulated guest (sshd sessions and
// `tart exec`): a login's variables plus the sim's markers (sim/PROTOCOL.md):
// SIM_TART_VM names the VM so that its power-off finds every process it
// started; SIM_RUNNER_START_MS and SIM_GUEST_CLOCK_FILE are read by the fake
// actions runner, as are the settings' runner_env (SIM_RUNNER_* hooks).
// PATH starts with the guest's own commands (guest/bin).
import { join } from "node:path";
import type { SimTartSettings } from "../settings.ts";
import { clockFile } from "./clock.ts";
import { SIM_TART_DIR } from "../compiled.ts";
import { GUEST_USER, guestRoot, userHome } from "./fs.ts";

export const VM_MARKER = "SIM_TART_VM";
/** Marks a VM's power watchdog (guest/watchdog.ts), which is not part of the guest. */
export const POWER_MARKER = "SIM_TART_POWER";

const GUEST_BIN = join(SIM_TART_DIR, "guest", "bin");

export function guestEnv(vmDir: string, settings: SimTartSettings): Record<string, string> {
  return {
    ...settings.runner_env,
    HOME: userHome(guestRoot(vmDir), GUEST_USER),
    USER: GUEST_USER,
    LOGNAME: GUEST_USER,
    SHELL: "/bin/sh",
    PATH: `${GUEST_BIN}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    LANG: "en_US.UTF-8",
    [VM_MARKER]: vmDir,
    SIM_RUNNER_START_MS: String(settings.runner_start_ms),
    SIM_GUEST_CLOCK_FILE: clockFile(vmDir),
  };
}
