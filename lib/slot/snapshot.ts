// Warm start (vm.start: snapshot, docs/snapshots.md):
//   golden:  clone image -> set cpu/memory/MAC (before its first boot) -> run --suspendable -> SSH -> suspend
//   a cycle: clone golden (no `tart set`: it would spoil the state) -> run (restores) -> SSH -> clock sync
// One golden per slot: the MAC is frozen in the snapshot, so two VMs restored
// from one golden would collide. The JIT config is handed over only after the
// restore, so no secret is ever in a snapshot.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { boot, type Booted } from "../vm/boot.ts";
import { removeVm } from "./clean.ts";
import { clone } from "../vm/clone.ts";
import type { Config } from "../config/index.ts";
import { MacosRunnerError } from "../core/errors.ts";
import type { ImageChoice } from "../image/pin.ts";
import type { Logger } from "../core/log.ts";
import type { SlotRun } from "./context.ts";
import { runInGuest, type GuestTarget } from "../vm/guest.ts";
import { VmLimitError, type Tart } from "../vm/tart.ts";
import { readTail, vmLogPath } from "../vm/run-log.ts";
import type { Clock } from "../core/wait.ts";

/** As the golden image's own boot does. */
export const TIME_SERVER = "time.apple.com";
/** A suspend writes the VM's memory to disk: seconds for a 4 GB guest; more is a hung VM. */
const SUSPEND_TIMEOUT_MS = 120_000;

export class SnapshotError extends MacosRunnerError {}

/** Names an image's golden: its digest, else a hash of the reference (an unpinned tag or a local VM). */
export function imageKey(choice: ImageChoice): string {
  const digest = choice.digest?.replace(/^sha256:/, "");
  return digest ?? createHash("sha256").update(choice.ref).digest("hex");
}

const isSuspended = (tart: Tart, name: string) => existsSync(join(tart.home, "vms", name, "state.vzvmsave"));

/** The slot's golden for this image, made now if missing; undefined when it cannot be made (the cycle boots cold). */
export async function prepareGolden(r: SlotRun, choice: ImageChoice): Promise<string | undefined> {
  const name = r.names.golden(imageKey(choice));
  const g = r.store.current.golden;
  if (g?.name === name && g.image === choice.ref && isSuspended(r.tart, name)) return name;
  try {
    await makeGolden(r, choice.ref, name);
    return name;
  } catch (err) {
    // A cold boot would meet the same limit.
    if (err instanceof VmLimitError) throw err;
    if (r.stop.drain.aborted) return undefined;
    r.log.warn("golden.failed", `could not make the golden VM ${name} (${(err as Error).message}); this cycle boots cold, the next one tries again`, { vm: name });
    return undefined;
  }
}

/** Every golden of the slot but `keep`. */
export async function deleteGoldens(ctx: Pick<SlotRun, "tart" | "names" | "log">, keep?: string): Promise<string[]> {
  const deleted: string[] = [];
  for (const v of await ctx.tart.list()) {
    if (!ctx.names.ownsGolden(v.Name) || v.Name === keep) continue;
    await removeVm(ctx.tart, v.Name);
    ctx.log.info("golden.deleted", `golden VM ${v.Name} deleted`, { vm: v.Name });
    deleted.push(v.Name);
  }
  return deleted;
}

async function makeGolden(r: SlotRun, image: string, name: string): Promise<void> {
  const { config, tart, store } = r;
  const log = r.log.child({ phase: "boot", vm: name });
  const started = r.clock.now();
  await deleteGoldens(r);
  // Recorded first: a crash half-way leaves a name the next cycle replaces.
  store.write({ golden: { name, image, created_at: new Date(r.clock.now()).toISOString() }, phase: "boot" });
  log.info("golden.make", `making the golden VM for ${image}: cold boot, then suspend`);
  try {
    await clone({ config, tart, vm: name, image, log, signal: r.stop.drain });
    const booted = await boot({ config, tart, vm: name, slot: r.slot, clock: r.clock, log, signal: r.stop.drain, suspendable: true });
    await tart.suspend(name);
    const suspended = new AbortController();
    const ended = await Promise.race([booted.vm.exited, r.clock.sleep(SUSPEND_TIMEOUT_MS, suspended.signal).then(() => undefined)]).finally(() => suspended.abort());
    if (!ended) throw new SnapshotError(`tart suspend ${name} did not end its VM within ${SUSPEND_TIMEOUT_MS / 1000} s`);
    if (!isSuspended(tart, name)) throw new SnapshotError(`tart suspend ${name} saved no state (tart run exit ${ended.code ?? ended.signal}; see ${vmLogPath(config, r.slot)})`);
  } catch (err) {
    await removeVm(tart, name).catch(() => {});
    store.write({ golden: undefined });
    throw err;
  }
  log.info("golden.ready", `golden VM ${name} suspended`, { duration_ms: r.clock.now() - started, image });
}

/** "cold" when it booted after all (a MAC in use makes tart drop the state). */
export async function restoredPath(r: SlotRun, vm: string, golden: string, booted: Booted, log: Logger): Promise<"snapshot" | "cold"> {
  const logFile = vmLogPath(r.config, r.slot);
  if (!readTail(logFile, booted.logOffset).includes("resuming VM")) {
    log.warn("snapshot.not_restored", `VM ${vm} booted cold instead of restoring its snapshot (see ${logFile})`);
    r.store.write({ path: "cold" });
    return "cold";
  }
  await syncClock(r.config, r.tart, { vm, ip: booted.ip }, log, r.clock);
  log.info("snapshot.restored", `VM ${vm} restored from ${golden}`, { duration_ms: r.clock.now() - booted.startedAt });
  return "snapshot";
}

/**
 * A clone started while another VM with its golden's MAC runs has its MAC
 * reset by tart and its saved state dropped: a silent cold boot. A holder of
 * the slot's is forced off first; another's is named and left.
 */
export async function freeGoldenMac(r: Pick<SlotRun, "tart" | "names">, vm: string, log: Logger): Promise<void> {
  const mac = r.tart.macAddress(vm);
  if (!mac) return;
  for (const v of await r.tart.list()) {
    if (!v.Running || v.Name === vm || r.tart.macAddress(v.Name) !== mac) continue;
    const ours = r.names.owns(v.Name);
    log.warn("snapshot.mac_in_use", `VM ${v.Name} runs with the MAC ${mac} that ${vm} restores with; ${ours ? "forcing it off first" : "it is not this slot's: left running, so tart resets the MAC and this VM boots cold"}`, { vm, holder: v.Name, mac });
    if (ours) await r.tart.forceOff(v.Name);
  }
}

/** The restored guest's clock is the snapshot's, which fails the runner's calls to GitHub. */
async function syncClock(config: Config, tart: Tart, target: GuestTarget, log: Logger, clock: Clock): Promise<void> {
  const started = clock.now();
  const r = await runInGuest(config, tart, target, `sudo sntp -sS ${TIME_SERVER}`, 30_000);
  if (r.code !== 0) throw new SnapshotError(`clock sync in the restored guest failed (sntp -sS ${TIME_SERVER}, exit ${r.code}): ${r.stderr.split("\n").at(-1) || "no output"}`);
  log.info("snapshot.clock_synced", `guest clock synced: ${r.stdout.trim().split(" ")[0] ?? ""} s`, { duration_ms: clock.now() - started });
}
