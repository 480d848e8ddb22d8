// The launchd labels of this project's jobs: one agent per VM slot, plus the
// image-pull daemon. install, doctor and the rendered plists agree on them here.
const LABEL_PREFIX = "dev.macos-runner";
export const PULL_LABEL = `${LABEL_PREFIX}.pull`;
/** Where launchd daemons' plists live (root-owned). */
export const DAEMONS_DIR = "/Library/LaunchDaemons";
/** The selftest's one-shot agent (never in LaunchAgents; booted out by the command that loaded it). */
export const SELFTEST_LABEL = `${LABEL_PREFIX}.selftest`;
/** Apple's licence allows two macOS VMs per host. */
export const MAX_SLOTS = 2;

export function slotLabel(slot: number): string {
  return `${LABEL_PREFIX}.slot.${slot}`;
}

/** Every label `install` may have loaded in the GUI session (pull was an agent before it became a daemon), so an uninstall finds them all. */
export function allLabels(): string[] {
  return [...Array.from({ length: MAX_SLOTS }, (_, i) => slotLabel(i + 1)), PULL_LABEL];
}
