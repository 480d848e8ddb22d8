// Booting a VM: `tart run` detached (or attached to one started earlier), the
// address from the watched DHCP lease file (tart's `ip --wait` re-reads it only
// once a second), then `true` in the guest over vm.transport until it answers.
import type { Config } from "../config/index.ts";
import { LocalNetworkError, MacosRunnerError } from "../core/errors.ts";
import { recordReach } from "./reach.ts";
import { leaseWatcher, watchLeases } from "./leases.ts";
import type { Logger } from "../core/log.ts";
import { aborted } from "../core/signals.ts";
import { localNetworkError, probeGuest, sshSettings } from "./guest.ts";
import { HostDegradedError, vmLimitOthers, VmLimitError, type RunningVm, type Tart } from "./tart.ts";
import { readTail, sizeOf, vmLogPath } from "./run-log.ts";
import { after, Waker, type Clock } from "../core/wait.ts";

export class BootError extends MacosRunnerError {}

/** A `tart run` an earlier process started, as the state file records it. */
export interface StartedVm {
  pid: number;
  pid_start?: string | undefined;
  started_at: string;
  log_offset: number;
}

export interface Booted {
  ip: string;
  vm: RunningVm;
  startedAt: number;
  leasedAt: number;
  /** When the guest answered (either transport). */
  sshAt: number;
  /** Where this run's output starts in the VM log. */
  logOffset: number;
}

/** After a failed readiness probe, the next one. */
const PROBE_MS = 20;
/** A new probe while earlier ones hang in tart's reconnect backoff. */
const PROBE_EVERY_MS = 50;
const MAX_PROBES = 12;
/** A probe this old made its first try and waits out tart's backoff (next try at 1 s): replaceable. */
const PROBE_STALE_MS = 1000;
/** Generous: a loaded host starts a process slowly. */
const PROBE_TIMEOUT_MS = 3000;
/** Lease file reads while no lease is there, besides when its directory changes. */
const LEASE_POLL_MS = 100;
/** At least this long for a VM booted ahead (however long ago) to answer. */
const ATTACHED_REACH_MS = 10_000;
const VM_LIMIT = 2;
/** How long a VM place may take to free after its `tart run` exited before the host counts as degraded. */
const PLACE_FREE_WAIT_MS = 10_000;
/** Short: a VM booted ahead usually meets the place of the VM just forced off, on the critical path. */
const PLACE_RETRY_MS = 200;
/** A `tart run` up this long is past the failures it reports at once (2-VM limit, VZ errors). */
const ALIVE_MS = 1000;

export interface BootOptions {
  config: Config;
  tart: Tart;
  vm: string;
  slot: number;
  log: Logger;
  clock: Clock;
  signal?: AbortSignal;
  /** Once the VM is up for ALIVE_MS or has an address, whichever comes first. */
  onAlive?: () => void;
  /** For a golden VM that is to be suspended. */
  suspendable?: boolean;
  /** Started by the previous cycle's process: attached to, not started. */
  started?: StartedVm | undefined;
}

/**
 * A VM place is not free the instant a `tart run` exits (Virtualization.framework
 * tears the VM down after), so the VM limit with fewer than two VMs running is
 * retried for PLACE_FREE_WAIT_MS, then the host is degraded (leaked places).
 */
export async function boot(o: BootOptions): Promise<Booted> {
  const log = o.log.child({ phase: "boot", vm: o.vm });
  let started = o.started;
  let limitSince: number | undefined;
  for (;;) {
    try {
      return await bootOnce({ ...o, started }, log);
    } catch (err) {
      if (!(err instanceof VmLimitError) || o.signal?.aborted) throw err;
      started = undefined;
      const running = (await o.tart.list()).filter((v) => v.Running && v.Name !== o.vm).map((v) => v.Name);
      if (running.length >= VM_LIMIT) throw err;
      const first = limitSince === undefined;
      limitSince ??= o.clock.now();
      const waited = o.clock.now() - limitSince;
      if (waited >= PLACE_FREE_WAIT_MS) throw new HostDegradedError(running, waited, "run", err.tartExitCode, err.stderr);
      if (first) log.info("boot.place_wait", `macOS reports its VM limit with ${running.length} VM(s) running: a stopped VM's place is still being freed; starting ${o.vm} again when it is`, { running });
      await o.clock.sleep(PLACE_RETRY_MS, o.signal);
    }
  }
}

async function bootOnce(o: BootOptions, log: Logger): Promise<Booted> {
  const logFile = vmLogPath(o.config, o.slot);
  const attached = o.started && (await attach(o, log));
  const started = attached ? Date.parse(o.started!.started_at) : o.clock.now();
  // A VM booted ahead long ago has booted; its address and SSH banner still get a few probes.
  const deadline = Math.max(started + o.config.vm.bootTimeoutMs, attached ? o.clock.now() + ATTACHED_REACH_MS : 0);
  const offset = attached ? o.started!.log_offset : sizeOf(logFile);
  const vm = attached || o.tart.run(o.vm, logFile, { suspendable: o.suspendable });
  let exited = false;
  const cancelAlive = after(o.clock, ALIVE_MS, () => o.onAlive?.());
  const died = vm.exited.then((e): never => {
    exited = true;
    cancelAlive();
    const output = readTail(logFile, offset);
    const others = vmLimitOthers(output);
    if (others) throw new VmLimitError(others, "run", e.code ?? 1, output);
    throw new BootError(`VM ${o.vm} stopped while booting (tart run exit ${e.code ?? e.signal}): ${output.split("\n").at(-1) || "no output"} (${logFile})`);
  });
  const stopped = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stopped.signal]) : stopped.signal;
  const abortedP = aborted(signal).then((): never => {
    throw new BootError(`boot of ${o.vm} aborted`);
  });
  const race = <T>(p: Promise<T>) => Promise.race([p, died, abortedP]);
  let leasedAt: number | undefined;
  const leased = (ip: string) => {
    leasedAt = o.clock.now();
    cancelAlive();
    o.onAlive?.();
    log.info("boot.ip", `VM has address ${ip}`, { ip, duration_ms: leasedAt - started });
  };
  if (attached) log.info("boot.attached", `the previous cycle started this VM ${o.clock.now() - started} ms ago`, { pid: vm.pid });
  else log.debug("boot.started", "tart run started", { pid: vm.pid });
  const transport = o.config.vm.transport;
  try {
    const ip = await race(reachable(o, deadline, signal, () => exited, leased)).catch((err: unknown) => {
      if (err instanceof LocalNetworkError) recordReach(o.config.host.stateDir, { slot: o.slot, transport, outcome: "refused", detail: err.message }, o.clock.now());
      throw err;
    });
    recordReach(o.config.host.stateDir, { slot: o.slot, transport, outcome: "ok" }, o.clock.now());
    const sshAt = o.clock.now();
    log.info("boot.done", `VM reachable at ${ip} (${transport})`, { ip, transport, duration_ms: sshAt - started, ssh_ms: sshAt - (leasedAt ?? sshAt) });
    return { ip, vm, startedAt: started, leasedAt: leasedAt ?? sshAt, sshAt, logOffset: offset };
  } finally {
    cancelAlive();
    stopped.abort();
    died.catch(() => {});
    abortedP.catch(() => {});
  }
}

/** The previous cycle's `tart run` if that very process (pid and start time: a pid may be reused) still runs; else the VM is forced off. */
async function attach(o: BootOptions, log: Logger): Promise<RunningVm | undefined> {
  const { pid, pid_start: startTime, started_at } = o.started!;
  const vm = o.tart.attach(o.vm, pid, startTime);
  if (vm) return vm;
  const age = o.clock.now() - Date.parse(started_at);
  log.warn("boot.restart", `the VM the previous cycle started ${Math.round(age / 1000)} s ago is not running as started (pid ${pid}${startTime ? `, started at ${startTime}` : ", no start time recorded"}); starting it again`, { pid });
  await o.tart.forceOff(o.vm);
  return undefined;
}

/**
 * Readiness probes (`true` in the guest) overlap: a `tart exec` made before
 * the guest agent answered is held by tart's reconnect backoff (1 s, then
 * x1.6), so a fresh probe beats waiting it out. Killing one is harmless.
 */
class Prober {
  /** Oldest first. */
  private readonly running: { at: number; kill: AbortController }[] = [];
  private lastStart = 0;
  private lastEnd = 0;
  private target: string | undefined;
  ok: string | undefined;
  refused: { ip: string; detail: string } | undefined;
  lastError = "";

  constructor(private readonly o: BootOptions, private readonly signal: AbortSignal, private readonly wake: () => void) {}

  tick(ip: string): void {
    const now = this.o.clock.now();
    const moved = this.target !== ip;
    const stale = this.running.length >= MAX_PROBES && now - this.running[0]!.at >= PROBE_STALE_MS;
    const room = this.running.length < MAX_PROBES || stale;
    const due = moved || (this.running.length === 0 && now - this.lastEnd >= PROBE_MS) || (room && now - this.lastStart >= PROBE_EVERY_MS);
    if (!due || this.ok) return;
    if (this.running.length >= MAX_PROBES) this.running.shift()!.kill.abort();
    this.target = ip;
    this.lastStart = now;
    const probe = { at: now, kill: new AbortController() };
    this.running.push(probe);
    void probeGuest(this.o.config, this.o.tart, { vm: this.o.vm, ip }, PROBE_TIMEOUT_MS, AbortSignal.any([this.signal, probe.kill.signal])).then((r) => {
      const i = this.running.indexOf(probe);
      if (i >= 0) this.running.splice(i, 1);
      this.lastEnd = this.o.clock.now();
      if (r.ok && this.target === ip) this.ok ??= ip;
      else if (r.refused) this.refused = { ip, detail: r.stderr.split("\n").at(-1) ?? "" };
      else if (r.stderr) this.lastError = r.stderr.split("\n").at(-1) ?? "";
      if (!r.ok) this.o.log.debug("boot.probe", `not ready: ${r.stderr.split("\n").at(-1) || "no answer"}`, { ip });
      this.wake();
    });
  }

  nextInMs(): number {
    const now = this.o.clock.now();
    return Math.max(1, Math.min(this.lastStart + PROBE_EVERY_MS - now, this.running.length === 0 ? this.lastEnd + PROBE_MS - now : Infinity));
  }
}

/**
 * The lease is re-read every round: a restored VM shares its MAC with earlier
 * clones of its golden, so the first lease seen can be a stale one. Without a
 * lease file or MAC, `tart ip --wait`.
 */
async function reachable(o: BootOptions, deadline: number, signal: AbortSignal, exited: () => boolean, leased: (ip: string) => void): Promise<string> {
  const mac = o.tart.macAddress(o.vm);
  const leases = o.config.host.dhcpLeasesPath;
  const waker = new Waker(o.clock);
  const prober = new Prober(o, signal, () => waker.wake());
  const transport = o.config.vm.transport;
  const unreachable = (ip: string) => {
    if (prober.refused) return localNetworkError(prober.refused.ip, prober.refused.detail);
    const last = prober.lastError ? ` (last: ${prober.lastError})` : "";
    return new BootError(transport === "exec"
      ? `VM ${o.vm}: the tart guest agent did not answer \`tart exec\` within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms)${last}; is tart-guest-agent installed and started in the image (docs/transport.md)?`
      : `VM ${o.vm}: no SSH at ${ip}:${sshSettings(o.config).port} within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms)${last}; is Remote Login enabled in the image? ` +
        "A connection refused or reset before SSH answers can be macOS Local Network privacy refusing the slot agent: use vm.transport: exec, or grant Local Network (docs/hosts.md)");
  };
  const probeUntilReady = async (ipNow: () => string | undefined): Promise<string | undefined> => {
    let seen: string | undefined;
    for (;;) {
      const current = exited() ? undefined : ipNow();
      if (current) {
        if (!seen) leased(current);
        seen = current;
        prober.tick(current);
        if (prober.ok === current) return current;
        if (prober.refused) throw unreachable(current);
      }
      const left = deadline - o.clock.now();
      if (signal.aborted || left <= 0) break;
      await waker.sleep(Math.min(current ? prober.nextInMs() : LEASE_POLL_MS, left), signal);
    }
    if (signal.aborted) throw new BootError(`boot of ${o.vm} aborted`);
    return seen;
  };
  if (mac && leases && sizeOf(leases) > 0) {
    const leaseOf = leaseWatcher(leases, mac, o.clock);
    const watcher = watchLeases(leases, () => waker.wake());
    try {
      const seen = await probeUntilReady(leaseOf);
      if (prober.ok) return prober.ok;
      if (seen) throw unreachable(seen);
    } finally {
      watcher.close();
    }
    throw new BootError(`VM ${o.vm} got no address within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms): no lease for ${mac} in ${leases}`);
  }
  let ip: string;
  try {
    ip = await o.tart.ip(o.vm, Math.max(1, (deadline - o.clock.now()) / 1000));
  } catch (err) {
    throw new BootError(`VM ${o.vm} got no address within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms): ${(err as Error).message}`);
  }
  await probeUntilReady(() => ip);
  if (!prober.ok) throw unreachable(ip);
  return ip;
}
