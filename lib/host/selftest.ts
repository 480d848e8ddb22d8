// selftest inside the one-shot agent: doctor's host checks, one real cycle with
// no GitHub job, then the snapshot path; every step timed. Its VMs carry slot
// names, so a slot's sweep removes any a killed selftest left.
import { existsSync, readFileSync, statSync } from "node:fs";
import { arch, cpus, release } from "node:os";
import { join } from "node:path";
import type { Config } from "../config/index.ts";
import { tartFor } from "../slot/context.ts";
import { freeBytes } from "../core/disk.ts";
import { knownHostsCheck } from "./doctor/files.ts";
import { imageChecks } from "./doctor/image.ts";
import { diskCheck, guiSessionCheck, signatureCheck, tartCheck, vmsCheck } from "./doctor/host.ts";
import { dhcpCheck } from "./doctor/network.ts";
import { fail, pass, skip, warn, type Check, type CheckResult, type DoctorContext } from "./doctor/types.ts";
import { MacosRunnerError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";
import { imageToClone } from "../image/pin.ts";
import { leaseFor, parseLeases, shortMac } from "../vm/leases.ts";
import type { Logger } from "../core/log.ts";
import { hostId, slotNames, type SlotNames } from "../config/names.ts";
import { runArgv } from "../core/proc.ts";
import { redact } from "../core/redact.ts";
import type { FileLock } from "../core/flock.ts";
import { lockSlot } from "../slot/lock.ts";
import { boot, type Booted } from "../vm/boot.ts";
import type { Transport } from "../vm/guest.ts";
import { clone } from "../vm/clone.ts";
import { VmLimitError, type Tart } from "../vm/tart.ts";
import { readTail, sizeOf, vmLogPath } from "../vm/run-log.ts";
import { sleep, systemClock } from "../core/wait.ts";
import { addressCheck, agentSessionCheck, clockCheck, execCheck, guestShell, hostKeyCheck, runnerCheck, sshChecks, sudoCheck } from "./selftest-checks.ts";

export interface SelftestOptions {
  config: Config;
  log: Logger;
  /** Even when vm.start is cold. */
  snapshot: boolean;
  /** Undefined when run from source. */
  binary: string | undefined;
  onResult(r: Result): void;
  /** SIGTERM (bootout): stop, clean up, report what was found. */
  signal: AbortSignal;
}

export type Result = CheckResult & { ms?: number | undefined };

export type SelftestReport = Awaited<ReturnType<typeof runSelftest>>;

/** The timings under sim/tart's profile keys, to set the bench's profiles against this host; teardown (a forced stop and a delete) stands for stop_ms + delete_ms. */
const SIM_PROFILE_KEYS: Record<string, string> = {
  clone_ms: "clone", boot_ms: "boot_to_lease", ssh_ms: "lease_to_ready", runner_start_ms: "runner_start", suspend_ms: "suspend", restore_ms: "restore_to_ready", teardown_ms: "teardown",
};

const CYCLE = ["slot-lock", "vm-place", "clone", "lease", "ready", "addresses", "guest-ssh", "local-network", "host-key", "guest-exec", "runner-version", "sudo", "teardown", "vm-place-free"];
const SNAPSHOT = ["snapshot-golden", "snapshot-suspend", "snapshot-clone-disk", "snapshot-restore", "snapshot-address", "snapshot-lease", "snapshot-clock", "snapshot-side-by-side", "snapshot-after-update"];
/** Seconds for a 4 GB guest; more is a hung VM. */
const SUSPEND_TIMEOUT_MS = 120_000;
/** Apple's licence: two macOS VMs at once. */
const VM_PLACES = 2;
/** More than this for a clone of a suspended golden is a real copy, not APFS copy-on-write. */
const COW_LIMIT_BYTES = 1e9;
/** macOS rewrites this file with every update: its mtime is the last update's time. */
const SYSTEM_VERSION = "/System/Library/CoreServices/SystemVersion.plist";

class Stopped extends MacosRunnerError {
  constructor() {
    super("selftest stopped by a signal; what it made is removed", { kind: "stopped" });
  }
}

/** Recorded before each is made, so a killed run's are removed by the next. */
class MadeVms {
  private names: string[] = [];
  constructor(private readonly file: string, private readonly tart: Tart, private readonly log: Logger) {}

  private save(names: string[]): void {
    this.names = names;
    writeFileAtomic(this.file, `${JSON.stringify(names)}\n`, 0o600);
  }

  add(name: string): string {
    this.save([...this.names, name]);
    return name;
  }

  async remove(name: string): Promise<void> {
    await this.tart.forceOff(name);
    await this.tart.delete(name);
    this.save(this.names.filter((n) => n !== name));
  }

  /** Never throws. */
  async removeAll(): Promise<void> {
    let recorded: string[] = [];
    try {
      recorded = JSON.parse(readFileSync(this.file, "utf8")) as string[];
    } catch {
      // nothing recorded
    }
    this.names = [...new Set([...recorded, ...this.names])];
    for (const name of [...this.names].reverse()) {
      await this.remove(name).catch((err: Error) => this.log.warn("selftest.cleanup_failed", `could not remove VM ${name}: ${err.message}; cleanup --slot N --sweep removes it`, { vm: name }));
    }
  }
}

class Run {
  readonly results: Result[] = [];
  readonly timings: Record<string, number> = {};
  readonly locks: FileLock[] = [];
  runner: string | undefined;
  readonly config: Config;
  readonly transport: Transport;
  readonly tart: Tart;
  readonly names: SlotNames[];
  readonly made: MadeVms;

  constructor(readonly o: SelftestOptions) {
    const config = (this.config = o.config);
    this.transport = config.vm.transport;
    this.tart = tartFor(config);
    this.names = [1, 2].map((slot) => slotNames(config.runner.namePrefix, slot, hostId(config.host.id, config.host.stateDir)));
    this.made = new MadeVms(join(config.host.stateDir, "selftest-vms.json"), this.tart, o.log);
  }

  add(r: Result, ms?: number): void {
    const result = { ...r, ...(ms !== undefined && { ms }) };
    this.results.push(result);
    this.o.log.info("selftest.check", `${r.status} ${r.check}: ${r.found}`, { check: r.check, status: r.status, duration_ms: ms });
    this.o.onResult(result);
  }

  time(step: string, ms: number): number {
    this.timings[step] = ms;
    return ms;
  }

  skipRest(checks: string[], why: string): void {
    for (const c of checks) if (!this.results.some((r) => r.check === c)) this.add(skip(c, why));
  }

  stopIfAsked(): void {
    if (this.o.signal.aborted) throw new Stopped();
  }

  async running(): Promise<string[]> {
    return (await this.tart.list()).filter((v) => v.Running).map((v) => v.Name);
  }
}

async function guarded(run: Run, name: string, check: () => Promise<Result | Result[]>): Promise<void> {
  try {
    const r = await check();
    for (const one of Array.isArray(r) ? r : [r]) run.add(one, one.ms);
  } catch (err) {
    if (err instanceof Stopped) throw err;
    run.add(fail(name, `the check itself failed: ${(err as Error).message}`, "report this with the JSON report; the other checks still ran"));
  }
}

async function hostChecks(run: Run): Promise<void> {
  const { config } = run;
  const ctx: DoctorContext = {
    config, configPath: config.file, tart: run.tart, platform: process.platform, uid: process.getuid?.() ?? 0, env: process.env,
    run: runArgv(15_000), host: hostId(config.host.id, config.host.stateDir), timeoutMs: 15_000, binaryPath: run.o.binary,
  };
  run.add(agentSessionCheck(process.env));
  const doctors: [string, Check][] = [["signature", signatureCheck], ["tart", tartCheck], ["gui-session", guiSessionCheck], ["vm-limit", vmsCheck], ["dhcp", dhcpCheck], ["disk", diskCheck], ["known-hosts", knownHostsCheck], ["registry", imageChecks]];
  for (const [name, check] of doctors) await guarded(run, name, () => check(ctx));
}

async function bootVm(run: Run, vm: string, slot: number, suspendable = false): Promise<{ booted: Booted } | { error: Error; leased: string | undefined }> {
  try {
    return { booted: await boot({ config: run.config, tart: run.tart, vm, slot, log: run.o.log, clock: systemClock, signal: run.o.signal, suspendable }) };
  } catch (err) {
    run.stopIfAsked();
    const mac = run.tart.macAddress(vm);
    return { error: err as Error, leased: mac ? leaseFor(run.config.host.dhcpLeasesPath, mac) : undefined };
  }
}

/** Recorded before it is made; `error` when the clone failed. */
async function cloneVm(run: Run, slot: number, image: string, configure = true): Promise<{ vm: string; ms: number; error?: Error }> {
  const vm = run.made.add(run.names[slot - 1]!.next());
  const started = Date.now();
  const error = await clone({ config: run.config, tart: run.tart, vm, image, log: run.o.log, signal: run.o.signal, configure }).then(() => undefined, (err: Error) => err);
  if (error) run.stopIfAsked();
  return { vm, ms: Date.now() - started, ...(error && { error }) };
}

async function teardown(run: Run, vm: string): Promise<number> {
  const started = Date.now();
  await run.made.remove(vm);
  return Date.now() - started;
}

async function coldCycle(run: Run, placesBefore: string[]): Promise<void> {
  const { config } = run;
  const image = imageToClone(config, run.o.log).ref;
  const { vm, ms, error } = await cloneVm(run, 1, image);
  if (error) {
    run.add(fail("clone", `tart clone ${image} ${vm} failed: ${error.message}`, "see the registry and disk checks above"), ms);
    return run.skipRest(CYCLE, "the clone failed");
  }
  run.add(pass("clone", `cloned ${image} into ${vm}`), run.time("clone", ms));
  const b = await bootVm(run, vm, 1);
  if ("error" in b && b.error instanceof VmLimitError) {
    run.add(fail("lease", `${vm} did not start: ${b.error.message}`, "see vm-limit and host-degraded: stop what is not ours; when nothing runs and the limit is still hit, VM places leaked and only a reboot frees them"));
  } else if ("error" in b) {
    run.add(b.leased ? pass("lease", `the VM leased ${b.leased}`) : fail("lease", `no lease for ${vm} in ${config.host.dhcpLeasesPath} within vm.boot_timeout (${b.error.message})`,
      "see the dhcp checks (pool full? lease time?); macOS gives VMs addresses only while Internet Sharing's bootpd runs"));
    if (b.leased) run.add(fail("ready", `${vm} leased ${b.leased} but was not ready over ${run.transport}: ${b.error.message}`, run.transport === "ssh" ? "is Remote Login on in the image? On macOS 15+, allow Local Network for macos-runner" : "is tart-guest-agent running in the image?"));
  } else {
    const { booted } = b;
    run.add(pass("lease", `${vm} leased ${booted.ip}`), run.time("boot_to_lease", booted.leasedAt - booted.startedAt));
    run.add(pass("ready", `ready over ${run.transport} at ${booted.ip}`), run.time("lease_to_ready", booted.sshAt - booted.leasedAt));
    await guestChecks(run, vm, booted.ip);
  }
  await guarded(run, "teardown", async () => ({ ...pass("teardown", `${vm} stopped and deleted`), ms: run.time("teardown", await teardown(run, vm)) }));
  await guarded(run, "vm-place-free", async () => {
    const listed = await run.tart.list();
    const still = listed.find((v) => v.Name === vm);
    const running = listed.filter((v) => v.Running).map((v) => v.Name);
    if (still) return fail("vm-place-free", `tart still lists ${vm} (${still.State})`, "tart stop and tart delete it by hand; report this");
    if (running.length > placesBefore.length) return fail("vm-place-free", `${running.length} VM(s) running after the teardown (${running.join(", ")}), ${placesBefore.length} before`, "report this with the JSON report");
    return pass("vm-place-free", `${vm} is gone; ${running.length} VM(s) running, as before the selftest`);
  });
  run.skipRest(CYCLE, "an earlier step failed");
}

async function guestChecks(run: Run, vm: string, ip: string): Promise<void> {
  const { config } = run;
  await guarded(run, "addresses", () => addressCheck("addresses", config, vm, run.tart.macAddress(vm), run.transport));
  if (config.vm.ssh) {
    let refused = false;
    await guarded(run, "guest-ssh", async () => {
      const found = await sshChecks(config, run.tart, vm, ip, run.transport);
      refused = found.refused;
      return found.results;
    });
    await guarded(run, "host-key", async () => (refused ? skip("host-key", "Local Network privacy refuses this agent's connections to the guest (see local-network)") : hostKeyCheck(config, ip)));
  } else {
    for (const c of ["guest-ssh", "local-network", "host-key"]) run.add(skip(c, "no vm.ssh in the config: ssh to the guest not tried (vm.transport exec does not use it)"));
  }
  await guarded(run, "guest-exec", () => execCheck(config, run.tart, vm, ip, run.transport));
  const shell = guestShell(config, run.tart, run.transport, vm, ip);
  await guarded(run, "runner-version", async () => {
    const r = await runnerCheck(config, shell);
    run.runner = r.version;
    return { ...r.result, ms: run.time("runner_start", r.startMs) };
  });
  await guarded(run, "sudo", () => sudoCheck(shell));
  run.stopIfAsked();
}

async function makeGolden(run: Run, slot: number) {
  const { config, o } = run;
  const started = Date.now();
  const { vm: name, error } = await cloneVm(run, slot, imageToClone(config, o.log).ref);
  if (error) return { error: `tart clone failed: ${error.message}` };
  const b = await bootVm(run, name, slot, true);
  if ("error" in b) return { error: `the golden did not boot: ${b.error.message}` };
  const mac = run.tart.macAddress(name);
  const leaseExpiry = mac ? leaseExpiryOf(config, mac) : undefined;
  const leaseReadAt = Date.now();
  const suspended = Date.now();
  try {
    await run.tart.suspend(name);
  } catch (err) {
    return { error: `tart suspend failed: ${(err as Error).message}` };
  }
  const ended = await Promise.race([b.booted.vm.exited, sleep(SUSPEND_TIMEOUT_MS, o.signal).then(() => undefined)]);
  run.stopIfAsked();
  const stateFile = join(run.tart.home, "vms", name, "state.vzvmsave");
  if (!ended || !existsSync(stateFile)) return { error: `tart suspend ${name} saved no state${ended ? ` (tart run exit ${ended.code ?? ended.signal}; see ${vmLogPath(config, slot)})` : ` within ${SUSPEND_TIMEOUT_MS / 1000} s`}` };
  run.time(slot === 1 ? "suspend" : "suspend_slot_2", Date.now() - suspended);
  return { name, ip: b.booted.ip, leaseExpiry, leaseReadAt, ms: suspended - started };
}

function leaseExpiryOf(config: Config, mac: string): number | undefined {
  try {
    return parseLeases(readFileSync(config.host.dhcpLeasesPath, "utf8")).filter((l) => l.mac === shortMac(mac)).map((l) => l.expiresAtMs).sort((a, b) => b - a)[0];
  } catch {
    return undefined;
  }
}

type Restore = Awaited<ReturnType<typeof restoreFrom>>;

/** Clones a suspended golden as it is (no `tart set`) and runs it. */
async function restoreFrom(run: Run, golden: string, slot: number) {
  const { config } = run;
  const free = freeBytes(run.tart.home);
  const { vm, ms: cloneMs, error } = await cloneVm(run, slot, golden, false);
  if (error) return { vm, cloneMs, diskBytes: 0, restored: false, error: `tart clone ${golden} failed: ${error.message}` };
  const diskBytes = Math.max(0, free - freeBytes(run.tart.home));
  const logFile = vmLogPath(config, slot);
  const offset = sizeOf(logFile);
  const b = await bootVm(run, vm, slot);
  const restored = readTail(logFile, offset).includes("resuming VM");
  if ("error" in b) return { vm, cloneMs, diskBytes, restored, error: b.error.message };
  return { vm, cloneMs, diskBytes, restored, booted: b.booted };
}

const restoreText = (r: Restore) => (r.error ? `failed (${r.error})` : r.restored ? `restored at ${r.booted!.ip} in ${r.booted!.sshAt - r.booted!.startedAt} ms` : `booted cold at ${r.booted!.ip}`);

async function snapshotPath(run: Run): Promise<void> {
  const { config } = run;
  const g = await makeGolden(run, 1);
  if ("error" in g) {
    run.add(fail("snapshot-golden", g.error, "see the cycle's checks above: a golden is a cold boot first"));
    return run.skipRest(SNAPSHOT, "no golden");
  }
  run.add(pass("snapshot-golden", `golden ${g.name} booted at ${g.ip}`), run.time("golden", g.ms));
  run.add(pass("snapshot-suspend", `tart suspend saved its state`), run.timings.suspend);
  // A lease's expiry has one-second resolution: a renewal on resume shows only in a later second.
  await sleep(Math.max(0, g.leaseReadAt + 1000 - Date.now()), run.o.signal);
  run.stopIfAsked();
  const r = await restoreFrom(run, g.name, 1);
  run.time("clone_golden", r.cloneMs);
  const mb = Math.round(r.diskBytes / 1e6);
  run.add(r.diskBytes < COW_LIMIT_BYTES ? pass("snapshot-clone-disk", `cloning the golden took ${mb} MB of disk (copy-on-write)`)
    : warn("snapshot-clone-disk", `cloning the golden took ${mb} MB of disk: not copy-on-write`, "keep TART_HOME on APFS"), r.cloneMs);
  if (r.booted) {
    run.time("restore_to_lease", r.booted.leasedAt - r.booted.startedAt);
    run.time("restore_to_ready", r.booted.sshAt - r.booted.startedAt);
  }
  if (!r.restored) {
    run.add(fail("snapshot-restore", `${r.vm} ${restoreText(r)} instead of restoring (${vmLogPath(config, 1)} has no "resuming VM")`, "a slot then boots cold and remakes its golden; report this with the VM log"), r.booted && r.booted.sshAt - r.booted.startedAt);
  } else {
    run.add(pass("snapshot-restore", `${r.vm} ${restoreText(r)}`), r.booted && r.booted.sshAt - r.booted.startedAt);
  }
  if (r.booted && r.restored) {
    const ip = r.booted.ip;
    await guarded(run, "snapshot-address", async () => {
      const a = await addressCheck("snapshot-address", config, r.vm, run.tart.macAddress(r.vm), run.transport);
      const moved = ip === g.ip ? `the golden's address ${g.ip} again` : `a new address (the golden had ${g.ip})`;
      return { ...a, found: `restored guest at ${ip}, ${moved}; ${a.found}` };
    });
    await guarded(run, "snapshot-lease", async () => {
      const mac = run.tart.macAddress(r.vm);
      const now = mac ? leaseExpiryOf(config, mac) : undefined;
      if (now === undefined || g.leaseExpiry === undefined) return warn("snapshot-lease", "the lease file has no lease for the MAC", "see the dhcp checks");
      if (now > g.leaseExpiry) return pass("snapshot-lease", `the restored guest renewed its lease on resume (now expires ${new Date(now).toISOString()})`);
      return warn("snapshot-lease", `the restored guest kept the golden's lease (expires ${new Date(now).toISOString()}): a golden older than the lease time may resume with no valid address`,
        "set DHCPLeaseTimeSecs (see dhcp-lease-time) and report this");
    });
    await guarded(run, "snapshot-clock", async () => {
      const c = await clockCheck(guestShell(config, run.tart, run.transport, r.vm, ip));
      return { ...c.result, ms: run.time("clock_sync", c.syncMs) };
    });
  } else {
    run.skipRest(["snapshot-address", "snapshot-lease", "snapshot-clock"], "the VM did not restore");
  }
  run.time("teardown_restored", await teardown(run, r.vm));
  run.stopIfAsked();
  await guarded(run, "snapshot-side-by-side", () => sideBySide(run, g.name));
  await guarded(run, "snapshot-after-update", () => afterUpdate(run));
  await run.made.remove(g.name);
}

async function sideBySide(run: Run, golden1: string): Promise<Result> {
  const check = "snapshot-side-by-side";
  if (run.config.host.slots < 2) return skip(check, "host.slots is 1");
  try {
    run.locks.push(lockSlot(run.config.host.stateDir, 2));
  } catch (err) {
    return skip(check, `${(err as Error).message}: stop slot 2 first`);
  }
  const running = await run.running();
  if (running.length > 0) return skip(check, `needs both VM places; running: ${running.join(", ")}`);
  const g2 = await makeGolden(run, 2);
  if ("error" in g2) return fail(check, `slot 2's golden: ${g2.error}`, "see snapshot-golden");
  const started = Date.now();
  const [a, b] = await Promise.all([restoreFrom(run, golden1, 1), restoreFrom(run, g2.name, 2)]);
  const ms = run.time("side_by_side_restore", Date.now() - started);
  for (const vm of [a.vm, b.vm, g2.name]) await run.made.remove(vm);
  const found = `slot 1's ${restoreText(a)}; slot 2's ${restoreText(b)}`;
  const ok = a.restored && b.restored && a.booted && b.booted && a.booted.ip !== b.booted.ip;
  return { ...(ok ? pass(check, found) : fail(check, found, "report this with the VM logs: the slots fall back to cold boots when it happens")), ms };
}

async function afterUpdate(run: Run): Promise<Result> {
  const check = "snapshot-after-update";
  if (process.platform !== "darwin" || !existsSync(SYSTEM_VERSION)) return skip(check, "macOS only (the last update's time is SystemVersion.plist's)");
  const updatedAt = statSync(SYSTEM_VERSION).mtimeMs;
  const born = (name: string) => statSync(join(run.tart.home, "vms", name)).birthtimeMs;
  const old = (await run.tart.list()).filter((v) => run.names.some((n) => n.ownsGolden(v.Name)) && v.State === "suspended" && born(v.Name) < updatedAt);
  if (old.length === 0) return skip(check, `no slot golden predates the last macOS update (${new Date(updatedAt).toISOString().slice(0, 10)}); run selftest --snapshot after the next update, before the slots remake their goldens`);
  const r = await restoreFrom(run, old[0]!.Name, 1);
  await run.made.remove(r.vm);
  const found = `a clone of ${old[0]!.Name} (made before the update) ${restoreText(r)}`;
  return r.restored ? pass(check, found) : warn(check, found, "expected cost of an update: each slot boots cold once and remakes its golden");
}

async function versions(run: Run): Promise<{ model: string; os: string; tart: string }> {
  const sh = runArgv(15_000);
  const out = async (argv: string[]) => ((r) => (r.code === 0 ? r.stdout.trim() : undefined))(await sh(argv));
  const tart = (await out([run.config.host.tartPath, "--version"])) ?? "unknown";
  if (process.platform === "darwin") {
    const model = (await out(["sysctl", "-n", "hw.model"])) ?? "unknown";
    const os = `macOS ${(await out(["sw_vers", "-productVersion"])) ?? "?"} (${(await out(["sw_vers", "-buildVersion"])) ?? "?"})`;
    return { model, os, tart };
  }
  return { model: `not a Mac: ${process.platform}-${arch()} (${cpus()[0]?.model ?? "unknown CPU"})`, os: `${process.platform} ${release()}`, tart };
}

export async function runSelftest(o: SelftestOptions) {
  const startedAt = new Date();
  const run = new Run(o);
  const snapshot = o.snapshot || o.config.vm.start === "snapshot";
  try {
    await selftestSteps(run, snapshot);
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
    run.skipRest([...CYCLE, ...SNAPSHOT], "stopped by a signal");
  } finally {
    await run.made.removeAll();
    for (const lock of run.locks) lock.release();
  }
  const count = (s: string) => run.results.filter((r) => r.status === s).length;
  return {
    format: "macos-runner-selftest/1" as const,
    started_at: startedAt.toISOString(),
    duration_ms: Date.now() - startedAt.getTime(),
    host: { ...(await versions(run)), image: imageToClone(o.config, o.log).ref, runner: run.runner, slots: o.config.host.slots, start: o.config.vm.start, transport: run.transport },
    summary: { pass: count("PASS"), warn: count("WARN"), fail: count("FAIL"), skip: count("SKIP") },
    checks: run.results,
    timings_ms: run.timings,
    sim_profile: Object.fromEntries(Object.entries(SIM_PROFILE_KEYS).flatMap(([key, step]) => (run.timings[step] === undefined ? [] : [[key, run.timings[step]!]]))),
  };
}

async function selftestSteps(run: Run, snapshot: boolean): Promise<void> {
  const { stateDir } = run.config.host;
  // Doctor's checks would count what a killed selftest left as leaked.
  await run.made.removeAll();
  await hostChecks(run);
  run.stopIfAsked();
  try {
    run.locks.push(lockSlot(stateDir, 1));
    run.add(pass("slot-lock", "slot 1 is free: its loop is stopped"));
  } catch (err) {
    run.add(fail("slot-lock", (err as Error).message, "the cycle needs slot 1's VM names and place: stop the slots first (launchctl bootout gui/$(id -u)/dev.macos-runner.slot.1, and .2), then run selftest"));
  }
  if (run.locks.length > 0) {
    const running = await run.running();
    if (running.length >= VM_PLACES) {
      run.add(fail("vm-place", `no free VM place: running ${running.join(", ")}`, "stop the slots (or the VMs no slot owns: see vm-limit), then run selftest"));
    } else {
      run.add(pass("vm-place", `${VM_PLACES - running.length} of ${VM_PLACES} VM places free`));
      await coldCycle(run, running);
      if (snapshot) await snapshotPath(run);
    }
  }
  run.skipRest(CYCLE, "slot 1 or a VM place is not free");
  run.skipRest(SNAPSHOT, snapshot ? "the cycle could not run" : "vm.start is cold: `selftest --snapshot` checks the snapshot path");
}

export function writeReport(path: string, report: SelftestReport): void {
  writeFileAtomic(path, redact(`${JSON.stringify(report, null, 2)}\n`), 0o644);
}

export function formatRow(r: Result): string {
  const time = r.ms === undefined ? "" : r.ms >= 10_000 ? `${(r.ms / 1000).toFixed(0)} s` : r.ms >= 1000 ? `${(r.ms / 1000).toFixed(1)} s` : `${r.ms} ms`;
  return `${r.status.padEnd(4)}  ${r.check.padEnd(22)} ${time.padStart(7)}  ${r.found}${r.fix ? `; ${r.fix}` : ""}`;
}

export function formatSummary(report: SelftestReport, reportPath: string): string {
  const s = report.summary;
  const timings = Object.entries(report.timings_ms).map(([k, v]) => `${k} ${v} ms`).join(", ");
  return [
    "",
    `${s.pass} pass, ${s.warn} warn, ${s.fail} fail, ${s.skip} skip in ${Math.round(report.duration_ms / 1000)} s on ${report.host.model}, ${report.host.os}, tart ${report.host.tart}`,
    `timings: ${timings || "none"}`,
    ...(report.timings_ms.runner_start === undefined ? [] : ["(runner_start is `run.sh --version` in the guest: without a JIT config a runner opens no session, so this is its start-up alone)"]),
    `report: ${reportPath}`,
    `To send it to us, attach ${reportPath} to a GitHub issue of macos-runner (drag the file into the comment box); it holds no secret.`,
    "",
  ].join("\n");
}
