// Whether a runner that carries this slot's name is this slot's to delete.
//
// The name alone proves nothing: two hosts with the same host id (Macs
// imaged alike, pinned from a shared hostname, or host.id copied between
// configs) make names with the same `<prefix>-<host>-<slot>-` part. What
// proves a runner is ours:
//   - our state names it (the slot writes a runner's name before creating
//     it, so every runner it made is named there until it is cleaned), or
//   - tart on this host has a VM of its name (a runner is named after its VM).
// A runner with neither is judged by what GitHub says of it:
//   - online: a runner process somewhere holds its JIT config and is
//     connected. Not ours (our state and tart would know it): a second
//     owner. It is never deleted; the slot logs `host.id_conflict`, doctor
//     fails.
//   - offline: what a crash of ours leaves when the state that named it was
//     lost (a replaced state file), so it is swept as before. A second
//     owner's runner is offline too for the seconds between its creation and
//     its connection: once a second owner has been seen (within a day, after
//     which GitHub drops offline ephemeral runners itself), no unproven
//     runner is deleted at all.
import type { Runner } from "../github/runners.ts";

/** How long, after a second owner was last seen, unproven offline runners are left alone. */
export const CONFLICT_MEMORY_MS = 24 * 60 * 60_000;

export interface Evidence {
  /** Runner names our state names (current runner, ghosts). */
  named: ReadonlySet<string>;
  /** VM names tart lists on this host. */
  vms: ReadonlySet<string>;
}

/** Ours by proof: named by our state or by a VM of ours. */
export function provenOurs(runner: Pick<Runner, "name">, e: Evidence): boolean {
  return e.named.has(runner.name) || e.vms.has(runner.name);
}

/** Another owner's by evidence: online, and neither our state nor our tart knows it. */
export function secondOwners(runner: Pick<Runner, "name" | "status">, e: Evidence): boolean {
  return runner.status === "online" && !provenOurs(runner, e);
}

/** The one error line's text, also doctor's finding. */
export function conflictMessage(runners: readonly Pick<Runner, "name" | "id">[], namePrefix: string): string {
  return `runner ${runners.map((r) => `${r.name} (id ${r.id})`).join(", ")} is named like this host's (${namePrefix}…) and is online, but neither this host's slot state nor tart here knows it: another host uses the same host id`;
}

export const CONFLICT_FIX =
  "give each host a unique host.id (set host.id in its config, or drain it and remove <state_dir>/host-id so the next launch picks one from the hardware UUID); runners that are not provably this host's are left alone meanwhile";
