// Whether a runner named like this slot's is its to delete. Two hosts with the
// same host id (Macs imaged alike, host.id copied) make the same names, so
// only our state or a VM of its name proves a runner ours. An unproven online
// runner is a second owner's, never deleted; an unproven offline one is what a
// crash with a lost state leaves, swept, unless a second owner was seen within
// a day (its runners are offline between creation and connection).
import type { Runner } from "../github/runners.ts";

/** GitHub drops offline ephemeral runners itself within a day. */
export const CONFLICT_MEMORY_MS = 24 * 60 * 60_000;

interface Evidence {
  /** Runner names our state names. */
  named: ReadonlySet<string>;
  /** VM names tart lists on this host. */
  vms: ReadonlySet<string>;
}

export function provenOurs(runner: Pick<Runner, "name">, e: Evidence): boolean {
  return e.named.has(runner.name) || e.vms.has(runner.name);
}

export function secondOwners(runner: Pick<Runner, "name" | "status">, e: Evidence): boolean {
  return runner.status === "online" && !provenOurs(runner, e);
}

/** Also doctor's finding. */
export function conflictMessage(runners: readonly Pick<Runner, "name" | "id">[], namePrefix: string): string {
  return `runner ${runners.map((r) => `${r.name} (id ${r.id})`).join(", ")} is named like this host's (${namePrefix}…) and is online, but neither this host's slot state nor tart here knows it: another host uses the same host id`;
}

export const CONFLICT_FIX =
  "give each host a unique host.id (set host.id in its config, or drain it and remove <state_dir>/host-id so the next launch picks one from the hardware UUID); runners that are not provably this host's are left alone meanwhile";
