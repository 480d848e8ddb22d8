// Named timing profiles of the simulated tart (format: sim/tart/README.md).
// "realistic" follows published figures for an Apple Silicon host and a 4 GB
// macOS guest; "scaled" keeps the real order of events at a fraction of the
// time; "fast" is for unit tests of the sim and the product.

export interface Timings {
  /** `tart clone` of a local VM (APFS copy-on-write). */
  clone_ms: number;
  /** From `tart run` to the guest's DHCP lease (`tart ip` answers). */
  boot_ms: number;
  /** From the lease to the guest's sshd answering. */
  ssh_ms: number;
  /** From the lease to the tart guest agent answering `tart exec` (it starts in the auto-login session, after sshd). */
  agent_ms: number;
  /** How long the fake actions runner takes from start to "Listening for Jobs" (SIM_RUNNER_START_MS). */
  runner_start_ms: number;
  /** From SIGINT (`Stopping VM...`) to the run process exiting. */
  stop_ms: number;
  /** From `tart run` exiting to its VM place being free again (Virtualization.framework's teardown). */
  place_release_ms: number;
  /** `tart delete` of one local VM. */
  delete_ms: number;
  /** `tart suspend`: pausing the VM and writing state.vzvmsave. */
  suspend_ms: number;
  /** `tart run` of a suspended VM: reading state.vzvmsave until `resuming VM...`. */
  restore_ms: number;
  /** Extra time per pulled blob. */
  pull_ms: number;
}

export const PROFILE_NAMES = ["fast", "scaled", "realistic"] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export const PROFILES: Record<ProfileName, Timings> = {
  // Tart's own figures and user reports: an APFS clone ~0.1 s, boot to IP
  // ~13 s, sshd ~2 s later, runner start ~1.5 s, VZ stop ~1 s, delete of a
  // sparse 50 GB disk ~0.5 s, restore of a 4 GB guest ~5 s (§11a); saving is
  // taken to cost as much as restoring, and a 512 MiB blob ~4 s at 1 Gbit/s.
  realistic: {
    clone_ms: 100,
    boot_ms: 13_000,
    ssh_ms: 2_000,
    agent_ms: 3_000,
    runner_start_ms: 1_500,
    stop_ms: 1_000,
    place_release_ms: 2_000,
    delete_ms: 500,
    suspend_ms: 5_000,
    restore_ms: 5_000,
    pull_ms: 4_000,
  },
  // Guest times at boot's ratio (2500/13000), host times at stop's (1/4);
  // clone is kept slower than realistic so that it is not free.
  scaled: {
    clone_ms: 200,
    boot_ms: 2_500,
    ssh_ms: 400,
    agent_ms: 500,
    runner_start_ms: 300,
    stop_ms: 250,
    place_release_ms: 1_000,
    delete_ms: 125,
    suspend_ms: 1_000,
    restore_ms: 1_000,
    pull_ms: 800,
  },
  // The sim's historical test defaults for the old keys; the new ones small
  // but not zero, so that their order of events still holds.
  fast: {
    clone_ms: 0,
    boot_ms: 500,
    ssh_ms: 200,
    agent_ms: 250,
    runner_start_ms: 100,
    stop_ms: 0,
    place_release_ms: 1_000,
    delete_ms: 20,
    suspend_ms: 100,
    restore_ms: 300,
    pull_ms: 0,
  },
};

export const TIMING_KEYS = Object.keys(PROFILES.fast) as (keyof Timings)[];
