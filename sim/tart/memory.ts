// MemoryTart: a second model of tart, in this process, for tests of the
// cycle that run in milliseconds. It keeps VMs, the OCI cache, runs, VM places
// and leases in memory and answers the product's `Tart` interface as TartCli
// answers it over the compiled fake tart (same errors, same messages, same log
// lines of `tart run`); tests/contract holds both to one suite. Time is the
// given Clock's only. What the product reads from tart's files on a Mac
// ($TART_HOME/vms/NAME/config.json and state.vzvmsave, the OCI cache's tag
// links, the DHCP lease file) is written for real under `home`.
// Not modelled: processes (pids are fake, above any real pid), sshd, the
// guest's files; guest commands answer from a function the test supplies.
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import type { Clock } from "../../lib/core/wait.ts";
import { TartError, VmNotFoundError, type GuestProcess, type RunningVm, type Tart, type VmListing } from "../../lib/vm/tart.ts";
import { renderLeases, type Lease } from "./dhcpd-leases.ts";
import { vmAlreadyRunning, vmDoesNotExist, vmIsRunning, vmNotRunning } from "./errors.ts";
import { randomMAC, type VMConfig } from "./home.ts";
import {
  AGENT_UNREACHABLE, CONTROL_SOCKET_CLOSED, CRASH, DISK_FULL, NOT_PAUSABLE, NOT_SUSPENDABLE, RESTORE_FAILED, START_FAILURE, vmLimitReached,
} from "./messages.ts";
import { isDigest, parseRemoteName, type RemoteName } from "./oci.ts";
import type { Fault } from "./settings.ts";

/** Times (ms) and limits, named and defaulted as sim/tart's settings (its `fast` profile). */
export interface MemoryTartSettings {
  clone_ms: number;
  /** From `run` to the guest's lease. */
  boot_ms: number;
  /** From the lease to the guest agent answering `exec` (at once when resumed). */
  agent_ms: number;
  /** From a run's end to its VM place being free again. */
  place_release_ms: number;
  delete_ms: number;
  suspend_ms: number;
  restore_ms: number;
  pull_ms: number;
  lease_s: number;
  exec_connect_timeout_ms: number;
  /** VM places held by no VM (macOS 26.3's leak); setting it lower is the reboot. */
  leaked_places: number;
  faults: Fault[];
}

export const MEMORY_TART_DEFAULTS: MemoryTartSettings = {
  clone_ms: 0, boot_ms: 500, agent_ms: 250, place_release_ms: 1000, delete_ms: 20, suspend_ms: 100, restore_ms: 300,
  pull_ms: 0, lease_s: 86_400, exec_connect_timeout_ms: 30_000, leaked_places: 0, faults: [],
};

/** The faults MemoryTart knows, as sim/tart's of the same names (crash counts `after_ms` from the guest agent answering). */
const FAULTS = ["clone_disk_full", "start_failure", "no_ip", "crash", "restore_failure"] as const;

/** What a guest command can write, and a signal that aborts when its VM stops. */
export interface GuestIo {
  stdout(text: string): void;
  stderr(text: string): void;
  signal: AbortSignal;
}
/** The guest: runs `/bin/sh -c command` with stdin, and answers its exit code. */
export type GuestModel = (command: string, stdin: string, io: GuestIo) => number | Promise<number>;

/** What the product runs in a guest before a runner: the readiness probe and the clock sync of a restored VM. */
export const defaultGuest: GuestModel = (command, _stdin, io) => {
  if (command === "true" || /^sudo sntp -sS \S+$/.test(command)) return 0;
  io.stderr(`sh: ${command.split(" ")[0]}: command not found (MemoryTart's guest answers only \`true\` and \`sudo sntp -sS SERVER\`; give it a guest model for more)\n`);
  return 127;
};

export interface MemoryTartOptions {
  clock: Clock;
  /** TART_HOME; default a new temporary directory, removed by dispose(). */
  home?: string;
  guest?: GuestModel;
  settings?: Partial<MemoryTartSettings>;
}

/** What MemoryTart keeps of a VM's config.json (sim/tart/home.ts writes the whole). */
type VmConfig = Pick<VMConfig, "version" | "os" | "arch" | "cpuCountMin" | "cpuCount" | "memorySizeMin" | "memorySize" | "macAddress" | "display" | "diskFormat">;

interface Image {
  digest: string;
  config: VmConfig;
}

interface LocalVm {
  name: string;
  config: VmConfig;
  /** Saved state (state.vzvmsave): whether the guest had booted, and the hardware it was saved with. */
  snapshot?: { booted: boolean; hardware: string } | undefined;
  run?: Run | undefined;
  accessed: number;
}

interface Place {
  /** When it frees; undefined while its VM runs. */
  freesAt?: number;
}

interface Run {
  vm: LocalVm;
  running: RunningVm;
  place: Place;
  /** restoring: a saved state is loading; ending: stopping or saving, no longer answering. */
  phase: "restoring" | "running" | "ending";
  suspendable: boolean;
  agent: boolean;
  stopAfterRestore: boolean;
  /** Appends a line to the run's log file (tart's stdout and stderr). */
  print(line: string): void;
  /** Aborted when the run ends: its timeline and its guest commands stop. */
  ended: AbortController;
  exit(e: { code: number | null; signal: string | null }): void;
}

/** Above any real pid (Linux's pid_max is at most 2^22), so no process check ever finds one. */
const FIRST_PID = 2 ** 22 + 1;
/**
 * From `run` to the VM running or refused: a `tart run` process takes that
 * long to start and take the VM's lock, and nothing may count on it sooner.
 */
const PROCESS_START_MS = 20;
/** How long TartCli.forceOff gives a run after SIGINT before SIGKILL. */
const STOP_GRACE_MS = 3_000;
/** What `list` reports of every VM's disk: 50 GB, 20 GB of it allocated. */
const DISK_GB = 50;
const SIZE_GB = 20;
/** The host's bridge100 network, where bootpd leases guests their addresses. */
const SUBNET = "192.168.64";
const GUEST_HOSTNAME = "admins-Virtual-Machine";

/** A failure as TartCli reports tart's output (lib/vm/tart.ts `fail`). */
function failure(command: string, what: string, code: number, stderr: string): TartError {
  const detail = stderr.split("\n").slice(-3).join(" ").slice(0, 300) || `exit ${code}`;
  const message = `tart ${command} failed (${what}): ${detail}`;
  if (code === 2 && /does not exist/.test(stderr)) return new VmNotFoundError(message, command, code, stderr);
  return new TartError(message, command, code, stderr);
}

/** What a saved state is bound to: a restore into other hardware fails. */
const hardware = (c: VmConfig) => JSON.stringify([c.cpuCount, c.memorySize, c.macAddress]);

const matches = (pattern: string | undefined, name: string) =>
  pattern === undefined || new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`).test(name);

export class MemoryTart implements Tart {
  readonly home: string;
  /** The DHCP lease file, where sim/tart keeps it ($TART_HOME/sim/dhcpd_leases): give it to the product as host.dhcp_leases_path. */
  readonly leasesFile: string;
  private readonly clock: Clock;
  private readonly guest: GuestModel;
  private readonly ownHome: boolean;
  private settings: MemoryTartSettings;
  private faultsUsed: number[] = [];
  private readonly vms = new Map<string, LocalVm>();
  /** The registry: `host/ns` -> tag -> image, and every image by digest. */
  private readonly registry = new Map<string, { tags: Map<string, Image>; digests: Map<string, Image> }>();
  /** The OCI cache: `host/ns` -> tags (-> digest) and digests (explicitly pulled or not). */
  private readonly cache = new Map<string, { tags: Map<string, string>; digests: Map<string, { image: Image; explicit: boolean }> }>();
  private readonly places: Place[] = [];
  /** `tart run`s not yet past their process start. */
  private readonly starting = new Set<{ name: string; started: AbortController }>();
  private leases: Lease[] = [];
  private nextPid = FIRST_PID;

  constructor(o: MemoryTartOptions) {
    this.clock = o.clock;
    this.guest = o.guest ?? defaultGuest;
    this.ownHome = o.home === undefined;
    this.home = o.home ?? mkdtempSync(join(tmpdir(), "memory-tart-"));
    this.leasesFile = join(this.home, "sim", "dhcpd_leases");
    this.settings = { ...MEMORY_TART_DEFAULTS };
    this.configure(o.settings ?? {});
  }

  /** Changes settings, as sim/tart's SIM_TART_CONFIG; new faults start unused. */
  configure(patch: Partial<MemoryTartSettings>): void {
    for (const f of patch.faults ?? []) {
      if (!(FAULTS as readonly string[]).includes(f.kind)) throw new Error(`MemoryTart has no fault "${f.kind}"; it models ${FAULTS.join(", ")}`);
    }
    this.settings = { ...this.settings, ...patch };
    if (patch.faults) this.faultsUsed = [];
  }

  /** Publishes an image in the model's registry under `ref` (host/ns:tag); its digest. */
  publish(ref: string): string {
    const r = parseRemoteName(ref);
    if (!r || isDigest(r.reference)) throw new Error(`MemoryTart.publish: "${ref}" is not host/namespace:tag`);
    const digest = `sha256:${createHash("sha256").update(randomBytes(32)).digest("hex")}`;
    const image: Image = {
      digest,
      config: {
        version: 1, os: "darwin", arch: "arm64", cpuCountMin: 4, cpuCount: 4, memorySizeMin: 8192 * 1024 * 1024, memorySize: 8192 * 1024 * 1024,
        macAddress: randomMAC(), display: { width: 1024, height: 768 }, diskFormat: "raw",
      },
    };
    const repo = this.repo(this.registry, r, () => ({ tags: new Map(), digests: new Map() }));
    repo.tags.set(r.reference, image);
    repo.digests.set(digest, image);
    return digest;
  }

  /** Ends every run at once and removes the home it made. */
  dispose(): void {
    for (const pending of this.starting) pending.started.abort();
    for (const vm of this.vms.values()) if (vm.run) this.end(vm.run, { code: null, signal: "SIGKILL" });
    if (this.ownHome) rmSync(this.home, { recursive: true, force: true });
  }

  async clone(source: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const what = `${source} -> ${name}`;
    if (name.includes("/")) throw failure("clone", what, 64, "Error: <new-name> should be a local name");
    const remote = parseRemoteName(source);
    let config: VmConfig;
    let snapshot: LocalVm["snapshot"];
    if (remote) {
      config = (this.cached(remote) ?? (await this.fetch(remote, "clone", what))).config;
    } else {
      const vm = this.vms.get(source);
      if (!vm) throw failure("clone", what, 2, vmDoesNotExist(source).message);
      ({ config, snapshot } = vm);
    }
    if (this.takeFault("clone_disk_full", name)) throw failure("clone", what, 1, `Error: ${DISK_FULL}`);
    await this.pause(Math.min(this.settings.clone_ms, timeoutMs), signal);
    if (signal?.aborted) throw new TartError(`tart clone ${name} stopped by a signal`, "clone", 1, "", "stopped");
    if (this.settings.clone_ms > timeoutMs) throw failure("clone", what, 1, "timed out");
    // Clone.swift: a MAC another local VM has is regenerated, unless the source is suspended (its MAC is in the saved state).
    const copy: VmConfig = structuredClone(config);
    if (!snapshot && [...this.vms.values()].some((v) => v.config.macAddress === copy.macAddress)) copy.macAddress = randomMAC();
    this.vms.set(name, { name, config: copy, snapshot: snapshot && { ...snapshot }, accessed: this.clock.now() });
    this.writeVm(name);
  }

  async set(name: string, s: { cpu?: number | undefined; memoryMb?: number | undefined; randomMac?: boolean }): Promise<void> {
    if (!s.cpu && !s.memoryMb && !s.randomMac) return;
    const vm = this.vms.get(name);
    if (!vm) throw failure("set", name, 2, vmDoesNotExist(name).message);
    const { config } = vm;
    if (s.cpu && s.cpu < config.cpuCountMin) {
      throw failure("set", name, 1, `Error: LessThanMinimalResourcesError: VM should have ${config.cpuCountMin} CPU cores at minimum (requested ${s.cpu})`);
    }
    if (s.memoryMb && s.memoryMb * 1024 * 1024 < config.memorySizeMin) {
      throw failure("set", name, 1, `Error: LessThanMinimalResourcesError: VM should have ${config.memorySizeMin / 1024 / 1024} megabytes of memory at minimum (requested ${s.memoryMb})`);
    }
    if (s.cpu) config.cpuCount = s.cpu;
    if (s.memoryMb) config.memorySize = s.memoryMb * 1024 * 1024;
    if (s.randomMac) config.macAddress = randomMAC();
    this.writeVm(name);
  }

  /**
   * `tart run`: what it prints goes to logFile, as TartCli's run sends it
   * there. PROCESS_START_MS later the VM runs, or its start is refused
   * (missing VM, the VM limit, a start failure) and the run exits with
   * tart's code.
   */
  run(name: string, logFile: string, o: { suspendable?: boolean | undefined } = {}): RunningVm {
    appendFileSync(logFile, "", { mode: 0o600 });
    const print = (line: string) => appendFileSync(logFile, `${line}\n`);
    const pid = this.nextPid++;
    let exit!: Run["exit"];
    const running: RunningVm = { pid, startTime: String(this.clock.now()), exited: new Promise((resolve) => (exit = resolve)) };
    const started = new AbortController();
    const pending = { name, started };
    this.starting.add(pending);
    void this.clock.sleep(PROCESS_START_MS, started.signal).then(() => {
      this.starting.delete(pending);
      // Signalled before tart set its handlers: the process ends by the signal.
      if (started.signal.aborted) return exit({ code: null, signal: "SIGINT" });
      this.start(name, { running, exit, print, suspendable: Boolean(o.suspendable) });
    });
    return running;
  }

  private start(name: string, r: { running: RunningVm; exit: Run["exit"]; print: Run["print"]; suspendable: boolean }): void {
    const { print } = r;
    const refuse = (code: number, line: string) => {
      print(line);
      r.exit({ code, signal: null });
    };
    const vm = this.vms.get(name);
    if (!vm) return refuse(1, `Error: ${vmDoesNotExist(name).message}`);
    const others = [...this.vms.values()].filter((v) => v.run && v !== vm);
    if (others.some((v) => v.config.macAddress === vm.config.macAddress)) {
      print("There is already a running VM with the same MAC address!");
      print("Resetting VM to assign a new MAC address...");
      vm.config.macAddress = randomMAC();
      vm.snapshot = undefined;
      this.writeVm(name);
    }
    if (vm.run) return refuse(2, vmAlreadyRunning(name).message);
    if (this.heldPlaces() + this.settings.leaked_places >= 2) return refuse(1, vmLimitReached(others.map((v) => v.name).sort()));
    if (this.takeFault("start_failure", name)) return refuse(1, START_FAILURE);
    const place: Place = {};
    this.places.push(place);
    const run: Run = {
      vm, running: r.running, place, phase: "running", suspendable: r.suspendable || vm.snapshot !== undefined,
      agent: false, stopAfterRestore: false, ended: new AbortController(), exit: r.exit, print,
    };
    vm.run = run;
    vm.accessed = this.clock.now();
    void this.live(run, { noIp: Boolean(this.takeFault("no_ip", name)), crash: this.takeFault("crash", name) });
  }

  /** A run's timeline: restore or boot, the lease, the guest agent, a crash. */
  private async live(run: Run, f: { noIp: boolean; crash: Fault | undefined }): Promise<void> {
    const { vm, print } = run;
    const wait = async (ms: number) => {
      await this.pause(ms, run.ended.signal);
      return run.phase !== "ending";
    };
    let resumed = false;
    if (vm.snapshot) {
      run.phase = "restoring";
      print("restoring VM state from a snapshot...");
      await this.pause(this.settings.restore_ms, run.ended.signal);
      if (run.ended.signal.aborted) return;
      // Saved state is bound to its hardware (the fake CLI's harsher reading): it stays, and fails the same way next time.
      if (this.takeFault("restore_failure", vm.name) || vm.snapshot.hardware !== hardware(vm.config)) {
        print(RESTORE_FAILED);
        return this.end(run, { code: 1, signal: null });
      }
      resumed = vm.snapshot.booted;
      vm.snapshot = undefined;
      this.writeVm(vm.name);
      print("resuming VM...");
      run.phase = "running";
      if (run.stopAfterRestore) return this.stop(run);
    }
    if (f.noIp || !(resumed || (await wait(this.settings.boot_ms)))) return;
    this.lease(vm.config.macAddress);
    if (!(resumed || (await wait(this.settings.agent_ms)))) return;
    run.agent = true;
    if (f.crash && (await wait(f.crash.after_ms ?? 0))) {
      print(`guest has stopped the virtual machine due to error: ${CRASH}`);
      this.end(run, { code: 0, signal: null });
    }
  }

  private stop(run: Run): void {
    run.print("Stopping VM...");
    this.end(run, { code: 0, signal: null });
  }

  /** The run is over: its guest commands lose their control socket, its place frees place_release_ms later. */
  private end(run: Run, e: { code: number | null; signal: string | null }): void {
    run.phase = "ending";
    run.ended.abort();
    if (run.vm.run === run) run.vm.run = undefined;
    run.place.freesAt = this.clock.now() + this.settings.place_release_ms;
    run.exit(e);
  }

  attach(name: string, pid: number, startTime: string | undefined): RunningVm | undefined {
    const running = this.vms.get(name)?.run?.running;
    return running && startTime !== undefined && running.pid === pid && running.startTime === startTime ? running : undefined;
  }

  /** `tart ip --wait`: the lease of the VM's MAC (a stale one too), read at once and then once a second. */
  async ip(name: string, waitS: number): Promise<string> {
    const until = this.clock.now() + Math.min(65535, Math.max(1, Math.ceil(waitS))) * 1000;
    do {
      const vm = this.vms.get(name);
      if (!vm) throw failure("ip", name, 2, vmDoesNotExist(name).message);
      const ip = this.leaseOf(vm.config.macAddress);
      if (ip) return ip;
      await this.clock.sleep(1000);
    } while (this.clock.now() < until);
    throw failure("ip", name, 1, `no IP address found${this.vms.get(name)?.run ? "" : ", is your VM running?"}`);
  }

  macAddress(name: string): string | undefined {
    return this.vms.get(name)?.config.macAddress;
  }

  /**
   * As TartCli does it: SIGINT, which ends a run not yet started and a running VM at once; one that
   * restores stops after its restore, one being saved finishes saving; one
   * still up after STOP_GRACE_MS gets SIGKILL. A missing VM counts as off.
   */
  async forceOff(name: string): Promise<void> {
    for (const pending of this.starting) if (pending.name === name) pending.started.abort();
    const run = this.vms.get(name)?.run;
    if (!run) return;
    if (run.phase === "running") return this.stop(run);
    if (run.phase === "restoring") run.stopAfterRestore = true;
    const ended = await Promise.race([run.running.exited.then(() => true), this.clock.sleep(STOP_GRACE_MS).then(() => false)]);
    if (!ended) this.end(run, { code: null, signal: "SIGKILL" });
  }

  async isRunning(name: string): Promise<boolean> {
    return this.vms.get(name)?.run !== undefined;
  }

  /** Local VMs (not while running: retried until deadlineMs, as TartCli does) or OCI cache entries; a missing one counts as deleted. */
  async delete(name: string, deadlineMs = 10_000): Promise<void> {
    const remote = parseRemoteName(name);
    if (remote) return this.uncache(remote);
    const until = this.clock.now() + deadlineMs;
    for (;;) {
      const vm = this.vms.get(name);
      if (!vm) return;
      if (!vm.run) break;
      if (this.clock.now() > until) throw failure("delete", name, 1, vmIsRunning(name).message);
      await this.clock.sleep(100);
    }
    await this.pause(this.settings.delete_ms);
    if (this.vms.get(name)?.run) throw failure("delete", name, 1, vmIsRunning(name).message);
    this.vms.delete(name);
    rmSync(join(this.home, "vms", name), { recursive: true, force: true });
  }

  async list(): Promise<VmListing[]> {
    return [...this.vms.values()].sort((a, b) => a.name.localeCompare(b.name)).map((vm) => {
      const state = vm.run ? "running" : vm.snapshot ? "suspended" : "stopped";
      return this.listing("local", vm.name, vm.accessed, state);
    });
  }

  async listCached(): Promise<VmListing[]> {
    const out: VmListing[] = [];
    for (const [repo, entry] of this.cache) {
      for (const tag of entry.tags.keys()) out.push(this.listing("OCI", `${repo}:${tag}`, 0, "stopped"));
      for (const digest of entry.digests.keys()) out.push(this.listing("OCI", `${repo}@${digest}`, 0, "stopped"));
    }
    return out.sort((a, b) => a.Name.localeCompare(b.Name));
  }

  /** `tart list --format json`'s entry: the fields and types TartCli parses. */
  private listing(source: VmListing["Source"], name: string, accessed: number, state: string): VmListing {
    // The fields beyond VmListing's are there too, as in TartCli's parsed JSON.
    const entry = { Source: source, Name: name, Disk: DISK_GB, Size: SIZE_GB, Accessed: new Date(accessed).toISOString().replace(/\.\d{3}Z$/, "Z"), Running: state === "running", State: state };
    return entry;
  }

  /**
   * `tart suspend` returns at once; the run then saves the VM (suspend_ms)
   * and ends, or, not run as suspendable, ends with nothing saved.
   */
  async suspend(name: string): Promise<void> {
    const vm = this.vms.get(name);
    if (!vm) throw failure("suspend", name, 2, vmDoesNotExist(name).message);
    const run = vm.run;
    if (!run) throw failure("suspend", name, 2, vmNotRunning(`VM "${name}" is not running`).message);
    const { print } = run;
    if (run.phase === "ending") return;
    if (!run.suspendable || run.phase === "restoring") {
      print(run.suspendable ? NOT_PAUSABLE : NOT_SUSPENDABLE);
      return this.end(run, { code: 1, signal: null });
    }
    run.phase = "ending";
    print("pausing VM to take a snapshot...");
    print("creating a snapshot...");
    void this.pause(this.settings.suspend_ms).then(() => {
      if (vm.run !== run) return; // killed meanwhile: nothing saved
      vm.snapshot = { booted: run.agent, hardware: hardware(vm.config) };
      this.writeVm(name);
      print("snapshot created successfully! shutting down the VM...");
      this.end(run, { code: 0, signal: null });
    });
  }

  async pull(ref: string, timeoutMs: number): Promise<void> {
    const remote = parseRemoteName(ref);
    if (!remote) return;
    if (this.settings.pull_ms > timeoutMs) {
      await this.clock.sleep(timeoutMs);
      throw failure("pull", ref, 1, "timed out");
    }
    await this.fetch(remote, "pull", ref, true);
  }

  /**
   * `tart exec`: before the guest agent answers, tart's reconnects (1 s, then
   * x1.6) until exec_connect_timeout_ms, then its error; a VM that stops
   * under a command closes the control socket. A killed client leaves the
   * command running (the harsher reading, as sim/tart).
   */
  exec(name: string, command: string, o: { input?: string; signal?: AbortSignal } = {}): GuestProcess {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let settle!: (e: { code: number | null; signal: string | null }) => void;
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => (settle = resolve));
    const client = new AbortController();
    const finish = (code: number | null, signal: string | null = null, message?: string) => {
      if (client.signal.aborted) return;
      client.abort();
      if (message) stderr.write(`${message}\n`);
      stdout.end();
      stderr.end();
      settle({ code, signal });
    };
    const kill = (signal: NodeJS.Signals = "SIGTERM") => finish(null, signal);
    if (o.signal?.aborted) kill();
    o.signal?.addEventListener("abort", () => kill(), { once: true });
    void (async () => {
      const vm = this.vms.get(name);
      if (!vm) return finish(2, null, vmDoesNotExist(name).message);
      const run = vm.run;
      if (!run) return finish(2, null, vmNotRunning(name).message);
      if (!(await this.connect(run, client.signal))) return finish(1, null, AGENT_UNREACHABLE);
      if (client.signal.aborted) return;
      const closed = () => finish(1, null, CONTROL_SOCKET_CLOSED);
      if (run.phase === "ending") return closed();
      run.ended.signal.addEventListener("abort", closed, { once: true });
      const io: GuestIo = {
        stdout: (text) => void (client.signal.aborted || stdout.write(text)),
        stderr: (text) => void (client.signal.aborted || stderr.write(text)),
        signal: run.ended.signal,
      };
      try {
        const code = await this.guest(command, o.input ?? "", io);
        finish(code);
      } catch (err) {
        finish(255, null, `MemoryTart's guest model failed on \`${command}\`: ${(err as Error).message}`);
      } finally {
        run.ended.signal.removeEventListener("abort", closed);
      }
    })();
    return { stdout, stderr, exited, kill };
  }

  /** The clock's sleep; none for no time, so a clock that moves only when told is not needed for it. */
  private async pause(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms > 0) await this.clock.sleep(ms, signal);
  }

  /** Waits for the run's guest agent as tart's connection pool does; false when it never answered in time. */
  private async connect(run: Run, signal: AbortSignal): Promise<boolean> {
    if (run.agent) return true;
    const start = this.clock.now();
    const timeout = this.settings.exec_connect_timeout_ms;
    for (let at = 1000, backoff = 1000; at < timeout; backoff *= 1.6, at += backoff) {
      await this.clock.sleep(start + at - this.clock.now(), signal);
      if (signal.aborted) return false;
      if (run.agent && run.phase !== "ending") return true;
    }
    await this.clock.sleep(start + timeout - this.clock.now(), signal);
    return false;
  }

  /** Places held: by running VMs, and by ended runs until they free. */
  private heldPlaces(): number {
    const now = this.clock.now();
    for (let i = this.places.length - 1; i >= 0; i--) if (this.places[i]!.freesAt !== undefined && this.places[i]!.freesAt! <= now) this.places.splice(i, 1);
    return this.places.length;
  }

  private takeFault(kind: (typeof FAULTS)[number], vm: string): Fault | undefined {
    const i = this.settings.faults.findIndex((f, i) => f.kind === kind && matches(f.vm, vm) && (this.faultsUsed[i] ?? 0) < (f.count ?? 1));
    if (i < 0) return undefined;
    this.faultsUsed[i] = (this.faultsUsed[i] ?? 0) + 1;
    return this.settings.faults[i];
  }

  private repo<T>(map: Map<string, T>, r: RemoteName, make: () => T): T {
    const key = `${r.host}/${r.namespace}`;
    let entry = map.get(key);
    if (!entry) map.set(key, (entry = make()));
    return entry;
  }

  private cached(r: RemoteName): Image | undefined {
    const entry = this.cache.get(`${r.host}/${r.namespace}`);
    const digest = isDigest(r.reference) ? r.reference : entry?.tags.get(r.reference);
    return digest === undefined ? undefined : entry?.digests.get(digest)?.image;
  }

  /** Pulls from the registry into the cache: the tag linked to its digest, or the digest kept as explicitly pulled. */
  private async fetch(r: RemoteName, command: string, what: string, explicit = false): Promise<Image> {
    const published = this.registry.get(`${r.host}/${r.namespace}`);
    const image = isDigest(r.reference) ? published?.digests.get(r.reference) : published?.tags.get(r.reference);
    if (!image) {
      throw failure(command, what, 1, `Error: UnexpectedHTTPStatusCode(when: "pulling manifest", code: 404, details: "{\\"errors\\":[{\\"code\\":\\"MANIFEST_UNKNOWN\\",\\"message\\":\\"manifest unknown\\"}]}")`);
    }
    await this.pause(this.settings.pull_ms);
    const entry = this.repo(this.cache, r, () => ({ tags: new Map(), digests: new Map() }));
    const had = entry.digests.get(image.digest);
    entry.digests.set(image.digest, { image, explicit: (had?.explicit ?? false) || (explicit && isDigest(r.reference)) });
    if (!isDigest(r.reference)) entry.tags.set(r.reference, image.digest);
    this.writeCache(r);
    this.gc(r);
    return image;
  }

  private uncache(r: RemoteName): void {
    const entry = this.cache.get(`${r.host}/${r.namespace}`);
    if (isDigest(r.reference)) entry?.digests.delete(r.reference);
    else entry?.tags.delete(r.reference);
    this.gc(r);
  }

  /** Drops dangling tags and digests nothing links to (unless pulled by digest), as tart's cache does. */
  private gc(r: RemoteName): void {
    const entry = this.cache.get(`${r.host}/${r.namespace}`);
    if (!entry) return;
    for (const [tag, digest] of entry.tags) if (!entry.digests.has(digest)) entry.tags.delete(tag);
    const linked = new Set(entry.tags.values());
    for (const [digest, d] of entry.digests) if (!linked.has(digest) && !d.explicit) entry.digests.delete(digest);
    this.writeCache(r);
  }

  /** The repository's cache directory as tart lays it out: `<tag>` -> `sha256:<hex>/`. */
  private writeCache(r: RemoteName): void {
    const dir = join(this.home, "cache", "OCIs", encodeURIComponent(r.host), r.namespace);
    rmSync(dir, { recursive: true, force: true });
    const entry = this.cache.get(`${r.host}/${r.namespace}`);
    if (!entry || (entry.digests.size === 0 && entry.tags.size === 0)) return;
    mkdirSync(dir, { recursive: true });
    for (const [digest, { image }] of entry.digests) {
      mkdirSync(join(dir, digest));
      writeFileSync(join(dir, digest, "config.json"), JSON.stringify(image.config, null, 2));
    }
    for (const [tag, digest] of entry.tags) symlinkSync(digest, join(dir, tag));
  }

  /** The VM's directory as tart lays it out: config.json, disk.img, nvram.bin, and state.vzvmsave while suspended. */
  private writeVm(name: string): void {
    const vm = this.vms.get(name)!;
    const dir = join(this.home, "vms", name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify(vm.config, null, 2));
    writeFileSync(join(dir, "disk.img"), "");
    writeFileSync(join(dir, "nvram.bin"), "");
    if (vm.snapshot) writeFileSync(join(dir, "state.vzvmsave"), "");
    else rmSync(join(dir, "state.vzvmsave"), { force: true });
  }

  private leaseOf(mac: string): string | undefined {
    const now = this.clock.now() / 1000;
    return this.leases.find((l) => l.mac === mac && l.expires > now)?.ip;
  }

  /** bootpd: the MAC's own unexpired address, else one no unexpired lease holds; none free, no lease. Newest first in the file. */
  private lease(mac: string): void {
    const now = this.clock.now() / 1000;
    const live = this.leases.filter((l) => l.expires > now);
    const held = new Set(live.map((l) => l.ip));
    const ip = this.leaseOf(mac) ?? Array.from({ length: 253 }, (_, i) => `${SUBNET}.${i + 2}`).find((a) => !held.has(a));
    if (!ip) return;
    this.leases = [{ mac, ip, expires: Math.floor(now) + this.settings.lease_s, name: GUEST_HOSTNAME }, ...this.leases.filter((l) => l.mac !== mac && l.ip !== ip)];
    mkdirSync(join(this.home, "sim"), { recursive: true });
    const tmp = `${this.leasesFile}.tmp`;
    writeFileSync(tmp, renderLeases(this.leases));
    renameSync(tmp, this.leasesFile);
  }
}
