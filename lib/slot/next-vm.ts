// The next VM, made ahead so neither its clone nor its boot is on the way to
// the next runner: cloned while this cycle's runner listens, booted as a healthy
// cycle ends, taken by the next cycle if usable. In the state file before it is
// cloned or started, so a crash, a stop or `cleanup` removes it like any VM.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { boot, type BootOptions, type Booted, type StartedVm } from "../vm/boot.ts";
import { clone } from "../vm/clone.ts";
import type { Logger } from "../core/log.ts";
import { imageToClone, type ImageChoice } from "../image/pin.ts";
import type { StartPath } from "../host/metrics/index.ts";
import { VmLimitError } from "../vm/tart.ts";
import { sizeOf, vmLogPath } from "../vm/run-log.ts";
import { removeVm } from "./clean.ts";
import type { SlotRun } from "./context.ts";
import { freeGoldenMac, imageKey, prepareGolden, restoredPath } from "./snapshot.ts";
import type { NextVm } from "./state.ts";

type StartOptions = Required<Pick<BootOptions, "log" | "signal" | "onAlive">>;

/** The next VM if usable, else a clone of the slot's golden or of the image; a restore that fails boots cold from the image. */
export async function cycleVm(r: SlotRun, choice: ImageChoice) {
  const golden = r.config.vm.start === "snapshot" ? await prepareGolden(r, choice) : undefined;
  const source = golden ?? choice.ref;
  const next = await takeNextVm(r, source);
  const name = next?.name ?? r.names.next();
  const path: StartPath = golden ? "snapshot" : next ? "next-vm" : "cold";
  const start = async (o: StartOptions): Promise<Booted & { path: StartPath }> => {
    const log = o.log.child({ phase: "boot" });
    const fresh = async (from: string) => {
      await cloneVm(r, name, from, { log, signal: o.signal });
      r.store.write({ phase: "boot" });
    };
    try {
      if (!next) await fresh(source);
      // The next VM, if booted ahead, had the golden's MAC freed before its start.
      if (golden && !next?.run) await freeGoldenMac(r, name, log);
      const booted = await bootVm(r, name, { ...o, log, started: next?.run });
      return { ...booted, path: golden ? await restoredPath(r, name, golden, booted, log) : path };
    } catch (err) {
      if (!golden || err instanceof VmLimitError || o.signal.aborted) throw err;
      log.warn("snapshot.fallback", `restoring ${name} from ${golden} failed (${(err as Error).message}); booting it cold from ${choice.ref}; the golden is made again next cycle`);
      r.store.write({ path: "cold", golden: undefined });
      await r.tart.forceOff(name);
      await removeVm(r.tart, golden).catch((e: Error) => log.warn("golden.delete_failed", `could not delete golden ${golden}: ${e.message}`));
      await fresh(choice.ref);
      return { ...(await bootVm(r, name, { ...o, log })), path: "cold" };
    }
  };
  return { name, source, next, path, start };
}

/** A clone of a golden keeps its hardware: `tart set` would spoil its saved state. */
async function cloneVm(r: SlotRun, vm: string, source: string, o: { log: Logger; signal: AbortSignal }): Promise<void> {
  const ms = await clone({ config: r.config, tart: r.tart, vm, image: source, log: o.log, signal: o.signal, configure: !r.names.ownsGolden(source) });
  r.metrics.observe("clone", ms / 1000);
}

async function bootVm(r: SlotRun, vm: string, o: StartOptions & { started?: StartedVm | undefined }): Promise<Booted> {
  const booted = await boot({ config: r.config, tart: r.tart, vm, slot: r.slot, clock: r.clock, ...o });
  r.metrics.observe("boot_to_ip", (booted.leasedAt - booted.startedAt) / 1000);
  r.metrics.observe("boot_to_ssh", (booted.sshAt - booted.startedAt) / 1000);
  return booted;
}

/** Why the next VM will not do for a cycle cloning from `source`. */
function unusable(r: SlotRun, next: NextVm, source: string): string | undefined {
  if (next.image !== source) return "of another image";
  if (!(r.clock.now() - Date.parse(next.created_at) < r.config.vm.nextVmMaxAgeMs)) return "too old";
  if (!existsSync(join(r.tart.home, "vms", next.name, "config.json"))) return "gone from disk";
  return undefined;
}

/** An unusable one is disposed of; forced off first if booted: it would hold a VM place. */
async function takeNextVm(r: SlotRun, source: string): Promise<NextVm | undefined> {
  const next = r.store.current.next_vm;
  const why = next && unusable(r, next, source);
  if (!next || !why) return next;
  r.log.info("next_vm.stale", `next VM ${next.name} is ${why}; deleting it`, { vm: next.name });
  dropNextVm(r);
  if (next.run) await r.tart.forceOff(next.name);
  return undefined;
}

function dropNextVm(r: SlotRun): void {
  const next = r.store.current.next_vm;
  if (next) r.store.write({ next_vm: undefined, dispose: [...r.store.current.dispose, next.name] });
}

const nextVm = (r: SlotRun, name: string, source: string): NextVm => ({ name, image: source, created_at: new Date(r.clock.now()).toISOString() });

/** The cycle's VM never started (the VM limit): the next cycle takes it as its next VM. */
export function keepAsNextVm(r: SlotRun, vm: string, source: string): void {
  r.store.write({ vm: undefined, next_vm: nextVm(r, vm, source) });
}

export async function cloneNextVm(r: SlotRun, source: string): Promise<void> {
  if (r.store.current.next_vm || r.stop.drain.aborted) return;
  const name = r.names.next();
  if (!r.store.write({ next_vm: nextVm(r, name, source) })) return;
  try {
    await cloneVm(r, name, source, { log: r.log, signal: r.stop.drain });
  } catch (err) {
    r.log.warn("next_vm.clone_failed", `could not clone the next VM ahead (${(err as Error).message}); the next cycle clones its own`, { vm: name });
    dropNextVm(r);
  }
}

/** A healthy cycle's last act: it boots while this process exits and launchd starts the next. */
export async function startNextVm(r: SlotRun): Promise<void> {
  const next = r.store.current.next_vm;
  const choice = imageToClone(r.config, r.log);
  const source = r.config.vm.start === "snapshot" ? r.names.golden(imageKey(choice)) : choice.ref;
  if (!next || next.run || r.stop.drain.aborted || unusable(r, next, source)) return;
  if (r.names.ownsGolden(next.image)) await freeGoldenMac(r, next.name, r.log.child({ phase: "done", vm: next.name }));
  const logFile = vmLogPath(r.config, r.slot);
  const run = { log_offset: sizeOf(logFile), started_at: new Date(r.clock.now()).toISOString() };
  const vm = r.tart.run(next.name, logFile);
  // Not recorded: nobody would know it runs.
  if (!r.store.write({ next_vm: { ...next, run: { ...run, pid: vm.pid, ...(vm.startTime && { pid_start: vm.startTime }) } } })) return await r.tart.forceOff(next.name);
  r.log.info("next_vm.booted", `booted the next VM ${next.name} ahead`, { vm: next.name, phase: "done" });
}

export async function disposeOld(r: SlotRun): Promise<void> {
  for (const vm of r.store.current.dispose) {
    try {
      await removeVm(r.tart, vm);
      r.store.write({ dispose: r.store.current.dispose.filter((v) => v !== vm) });
    } catch (err) {
      r.log.warn("dispose.failed", `could not delete finished VM ${vm} (${(err as Error).message}); the next cycle tries again`, { vm });
    }
  }
}

export async function disposeAll(r: SlotRun): Promise<void> {
  dropNextVm(r);
  await disposeOld(r);
}
