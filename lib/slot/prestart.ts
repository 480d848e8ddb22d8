// The next cycle's VM is started by this cycle, as its last act: once the
// job's VM is off, the VM cloned ahead (next_vm) gets its `tart run` here, so
// it boots while this process exits and launchd starts the next one (its
// start-up, config and state are no longer on the way to the next runner).
// The next cycle finds next_vm.run and waits for that VM instead of starting
// it. Only a VM the next cycle will take is started: same image (or golden),
// young enough, on disk, and only after a healthy cycle that is not stopping.
// A started VM is in the state before anything else happens, so a crash, a
// stop or `cleanup` forces it off like any VM the slot names.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { imageToClone } from "../image/choice.ts";
import { freeGoldenMac, imageKey } from "./snapshot.ts";
import type { SlotRun } from "./context.ts";
import { sizeOf, vmLogPath } from "../vm/run-log.ts";

/** The source the next cycle will clone from: the image, or the slot's golden for it. */
function nextSource(r: SlotRun): string {
  const choice = imageToClone(r.config, r.log);
  return r.config.vm.start === "snapshot" ? r.names.golden(imageKey(choice)) : choice.ref;
}

export async function startNextVm(r: SlotRun): Promise<void> {
  const next = r.store.current.next_vm;
  if (!next || next.run || r.stop.drain.aborted) return;
  const fresh = Date.now() - Date.parse(next.created_at) < r.config.vm.precloneMaxAgeMs;
  if (!fresh || next.image !== nextSource(r) || !existsSync(join(r.tart.home, "vms", next.name, "config.json"))) return;
  if (r.config.vm.start === "snapshot") await freeGoldenMac(r, next.name, r.log.child({ phase: "done", vm: next.name }));
  const logFile = vmLogPath(r.config, r.slot);
  const logOffset = sizeOf(logFile);
  const startedAt = new Date().toISOString();
  const vm = r.tart.run(next.name, logFile);
  if (!r.store.write({ next_vm: { ...next, run: { pid: vm.pid, ...(vm.startTime && { pid_start: vm.startTime }), started_at: startedAt, log_offset: logOffset } } })) {
    // Not recorded: nobody would know it runs.
    await r.tart.forceOff(next.name);
    return;
  }
  r.log.info("next.started", `started the next cycle's VM ${next.name} ahead`, { vm: next.name, phase: "done" });
}
