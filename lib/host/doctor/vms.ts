// Apple's licence allows two macOS VMs at once: VMs running that no slot
// names (a crashed cycle's, someone's test VM) take the slots' places. After
// a VZ leak the limit stays hit with nothing running; only a reboot clears it
// (contracts/tart.md §3).
import { isSlotsOwn } from "../../config/names.ts";
import { readSlotView } from "../slot-view.ts";
import { fail, pass, skipAll, type Check } from "./types.ts";

const VM_LIMIT = 2;

export const vmsCheck: Check = async (ctx) => {
  const { config, tart } = ctx;
  if (!config || !tart) return skipAll(["vm-limit", "leaked-vms", "host-degraded"], "config invalid");
  const degraded = hostDegradedCheck(config.host.stateDir, config.host.slots);
  let listed;
  try {
    listed = await tart.list();
  } catch (err) {
    return [fail("vm-limit", `tart list failed: ${(err as Error).message}`, "fix tart first (see the tart check)"), degraded];
  }
  const named = new Set<string>();
  for (let slot = 1; slot <= config.host.slots; slot++) {
    const r = readSlotView(config.host.stateDir, slot);
    if (r.kind === "ok") for (const n of [r.view.vm, r.view.next_vm?.name]) if (n) named.add(n);
  }
  const running = listed.filter((v) => v.Running).map((v) => v.Name);
  const ours = (name: string) => [1, 2].some((s) => isSlotsOwn(name, config.runner.namePrefix, s, ctx.host));
  const leaked = running.filter((n) => ours(n) && !named.has(n));
  const foreign = running.filter((n) => !ours(n));
  const results = [];
  const room = VM_LIMIT - foreign.length - leaked.length;
  if (room < config.host.slots) {
    results.push(fail("vm-limit", `${running.length} VM(s) running (${running.join(", ")}); only ${Math.max(0, room)} of ${config.host.slots} slot(s) can start a VM under the ${VM_LIMIT}-VM limit`,
      "stop the VMs no slot owns (tart stop NAME); if tart list shows none running and starts still fail with the system limit, reboot the host"));
  } else {
    results.push(pass("vm-limit", `${running.length} VM(s) running, room for ${config.host.slots} slot(s) under the ${VM_LIMIT}-VM limit`));
  }
  if (leaked.length > 0) {
    results.push(fail("leaked-vms", `running but named by no slot's state: ${leaked.join(", ")}`, `tart stop ${leaked[0]} && tart delete ${leaked[0]} (or cleanup --slot N --sweep)`));
  } else {
    results.push(pass("leaked-vms", "every running VM of this host is named by its slot's state"));
  }
  results.push(degraded);
  return results;
};

/** What the slots last saw: the VM limit with fewer than two VMs running, past the time a place takes to free. */
function hostDegradedCheck(stateDir: string, slots: number) {
  const seen: string[] = [];
  for (let slot = 1; slot <= slots; slot++) {
    const r = readSlotView(stateDir, slot);
    if (r.kind === "ok" && r.view.host_degraded_at) seen.push(`slot ${slot} at ${r.view.host_degraded_at}`);
  }
  if (seen.length === 0) return pass("host-degraded", "no slot found the host unable to start VMs");
  return fail("host-degraded", `the host cannot start VMs: macOS reports its VM limit with fewer than two VMs running (${seen.join(", ")}); VM places leaked`,
    "reboot the Mac (only a reboot frees leaked VM places); the slots wait host.backoff_max between tries until then");
}
