// The runner off GitHub first, then the VM: no job is ever handed to a runner
// whose VM is about to die.
import type { SlotContext } from "./context.ts";
import { MacosRunnerError } from "../core/errors.ts";
import type { GitHubClient } from "../github/client.ts";
import { deleteRunner, findRunnerByName } from "../github/runners.ts";
import type { Ghost } from "./state.ts";
import type { Tart } from "../vm/tart.ts";

class NotThisSlotsError extends MacosRunnerError {
  constructor(what: string, name: string, slot: number) {
    super(`refusing to remove ${what} ${name}: its name does not carry this host's prefix and slot ${slot}`, { kind: "usage" });
  }
}

export interface Leftovers {
  vm?: string | undefined;
  runnerId?: number | undefined;
  runnerName?: string | undefined;
  runnerGone?: boolean | undefined;
}

/** Busy: GitHub still holds a job on it (a ghost since now). */
export async function removeRunner(ctx: Pick<SlotContext, "clock">, gh: GitHubClient, target: { id?: number | undefined; name?: string | undefined }): Promise<"deleted" | "gone" | { busy: Ghost }> {
  const id = target.id ?? (target.name ? (await findRunnerByName(gh, target.name))?.id : undefined);
  if (id === undefined) return "gone";
  const outcome = await deleteRunner(gh, id);
  if (outcome !== "busy") return outcome;
  return { busy: { id, name: target.name ?? String(id), since: new Date(ctx.clock.now()).toISOString() } };
}

export async function removeVm(tart: Tart, vm: string): Promise<void> {
  await tart.forceOff(vm);
  await tart.delete(vm);
}

/** A busy runner becomes a ghost; `keepStoppedVm` leaves the VM for the next cycle to delete off its critical path. */
export async function cleanSlot(
  ctx: Pick<SlotContext, "slot" | "tart" | "names" | "log" | "clock">,
  gh: () => GitHubClient,
  target: Leftovers,
  o: { why: string; keepStoppedVm?: boolean } = { why: "cleanup" },
): Promise<{ ghost?: Ghost }> {
  const log = ctx.log.child({ phase: "cleanup", vm: target.vm, runner: target.runnerName });
  const started = ctx.clock.now();
  if (target.vm && !ctx.names.owns(target.vm)) throw new NotThisSlotsError("VM", target.vm, ctx.slot);
  if (target.runnerName && !ctx.names.owns(target.runnerName)) throw new NotThisSlotsError("runner", target.runnerName, ctx.slot);
  const cleaned: { ghost?: Ghost } = {};
  if (!target.runnerGone && (target.runnerId !== undefined || target.runnerName)) {
    const r = await removeRunner(ctx, gh(), { id: target.runnerId, name: target.runnerName });
    if (typeof r === "object") {
      cleaned.ghost = r.busy;
      log.warn("cleanup.runner_busy", `runner ${r.busy.id} is still busy on GitHub; recorded as a ghost, deleted by a later cycle`, { runner_id: r.busy.id });
    } else {
      log.info("cleanup.runner_removed", r === "deleted" ? "runner deleted from GitHub" : "runner was already gone", { runner_id: target.runnerId });
    }
  }
  if (target.vm) {
    await (o.keepStoppedVm ? ctx.tart.forceOff(target.vm) : removeVm(ctx.tart, target.vm));
    log.info("cleanup.vm", `VM ${target.vm} forced off${o.keepStoppedVm ? "; deleted by the next cycle" : " and deleted"}`);
  }
  log.info("cleanup.done", `slot clean (${o.why})`, { duration_ms: ctx.clock.now() - started });
  return cleaned;
}

