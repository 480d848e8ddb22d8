#!/usr/bin/env bun
// boot: start a VM headless and wait until its SSH server answers.
//   boot --slot 1 --vm NAME          # prints the VM's IP
// The address comes straight from the DHCP lease file as soon as the lease
// appears (its directory is watched; tart's own `ip --wait` re-reads it only
// once a second); then the SSH banner is polled. A `tart run` that exits
// early is read for why.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { MacosRunnerError, UsageError } from "../lib/errors.ts";
import { leaseWatcher, watchLeases } from "../lib/leases.ts";
import type { Logger } from "../lib/log.ts";
import { aborted } from "../lib/signals.ts";
import { lockSlot } from "../lib/slot/lock.ts";
import { bannerAt } from "../lib/ssh.ts";
import { HostDegradedError, vmLimitOthers, VmLimitError, type RunningVm, type Tart } from "../lib/tart.ts";
import type { StartedVm } from "../lib/slot/state.ts";
import { readTail, sizeOf, vmLogPath } from "../lib/vm-log.ts";
import { poll, sleep, Waker } from "../lib/wait.ts";

export const spec = {
  name: "boot",
  summary: "start a VM with `tart run --no-graphics` (detached) and wait for its address and SSH banner within vm.boot_timeout",
  options: {
    vm: { type: "string", value: "NAME", description: "the VM to boot (required)" },
  },
  exits: {
    failure: "the VM did not become reachable before vm.boot_timeout, or died while booting (the log says why)",
    tempfail: "the slot is in use by a loop, or another VM holds one of the host's two VM places",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export class BootError extends MacosRunnerError {}

export interface Booted {
  ip: string;
  vm: RunningVm;
  /** When `tart run` started, when the lease appeared and when SSH answered (epoch ms). */
  startedAt: number;
  leasedAt: number;
  sshAt: number;
}

/** How often the SSH port of a leased VM is probed. */
const PROBE_MS = 20;
/** How often the lease file is read while no lease is there, besides when its directory changes. */
const LEASE_POLL_MS = 100;
/** At least this long for a VM started ahead (however long ago) to show its address and SSH banner. */
const ATTACHED_REACH_MS = 10_000;
/** Apple's limit of macOS VMs running at once. */
const VM_LIMIT = 2;
/** How long a VM place may take to free after its `tart run` exited before the host counts as degraded. */
const PLACE_FREE_WAIT_MS = 10_000;
/** How often `tart run` is tried again while a place frees. */
const PLACE_RETRY_MS = 500;
/** A `tart run` still up after this long has got past the start failures it reports at once (2-VM limit, VZ errors). */
const ALIVE_MS = 1000;

export interface BootOptions {
  config: Config;
  tart: Tart;
  vm: string;
  slot: number;
  log: Logger;
  signal?: AbortSignal;
  /** Called once the VM is alive: up for ALIVE_MS, or given an address, whichever comes first. */
  onAlive?: () => void;
  /** `tart run --suspendable`, for a golden VM that is to be suspended (a suspended VM restores without it). */
  suspendable?: boolean;
  /** The VM's `tart run` was started by the previous cycle's process: wait for it rather than start it. */
  started?: StartedVm | undefined;
}

/**
 * Starts the VM (or waits for the one started ahead) until it is reachable.
 * A VM place is not free the instant a `tart run` exits (Virtualization.framework
 * tears the VM down after), so the VM limit with fewer than two VMs running is
 * retried for up to PLACE_FREE_WAIT_MS; still hit after that, the host has
 * leaked places (HostDegradedError). The limit with two VMs running fails at once.
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
      limitSince ??= Date.now();
      const waited = Date.now() - limitSince;
      if (waited >= PLACE_FREE_WAIT_MS) throw new HostDegradedError(running, waited, "run", err.tartExitCode, err.stderr);
      if (first) log.info("boot.place_wait", `macOS reports its VM limit with ${running.length} VM(s) running: a stopped VM's place is still being freed; starting ${o.vm} again when it is`, { running });
      await sleep(PLACE_RETRY_MS, o.signal);
    }
  }
}

async function bootOnce(o: BootOptions, log: Logger): Promise<Booted> {
  const logFile = vmLogPath(o.config, o.slot);
  const attached = o.started && (await attach(o, log));
  const started = attached ? Date.parse(o.started!.started_at) : Date.now();
  // A VM started ahead long ago has booted; its address and SSH banner still get a few probes.
  const deadline = Math.max(started + o.config.vm.bootTimeoutMs, attached ? Date.now() + ATTACHED_REACH_MS : 0);
  const offset = attached ? o.started!.log_offset : sizeOf(logFile);
  const vm = attached || o.tart.run(o.vm, logFile, { suspendable: o.suspendable });
  let exited = false;
  const aliveTimer = setTimeout(() => o.onAlive?.(), ALIVE_MS);
  const died = vm.exited.then((e): never => {
    exited = true;
    clearTimeout(aliveTimer);
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
    leasedAt = Date.now();
    clearTimeout(aliveTimer);
    o.onAlive?.();
    log.info("boot.ip", `VM has address ${ip}`, { ip, duration_ms: leasedAt - started });
  };
  if (attached) log.info("boot.attached", `the previous cycle started this VM ${Date.now() - started} ms ago`, { pid: vm.pid });
  else log.debug("boot.started", "tart run started", { pid: vm.pid });
  try {
    const ip = await race(reachable(o, deadline, signal, () => exited, leased));
    const sshAt = Date.now();
    log.info("boot.done", `VM reachable at ${ip}`, { ip, duration_ms: sshAt - started, ssh_ms: sshAt - (leasedAt ?? sshAt) });
    return { ip, vm, startedAt: started, leasedAt: leasedAt ?? sshAt, sshAt };
  } finally {
    clearTimeout(aliveTimer);
    stopped.abort();
    died.catch(() => {});
    abortedP.catch(() => {});
  }
}

/**
 * The `tart run` the previous cycle started, if that very process still runs:
 * known by its pid and its start time together, since a pid recorded before a
 * reboot may name another process by now. Any other VM is forced off and
 * started again.
 */
async function attach(o: BootOptions, log: Logger): Promise<RunningVm | undefined> {
  const { pid, pid_start: startTime, started_at } = o.started!;
  const vm = o.tart.attach(o.vm, pid, startTime);
  if (vm) return vm;
  const age = Date.now() - Date.parse(started_at);
  log.warn("boot.restart", `the VM the previous cycle started ${Math.round(age / 1000)} s ago is not running as started (pid ${pid}${startTime ? `, started at ${startTime}` : ", no start time recorded"}); starting it again`, { pid });
  await o.tart.forceOff(o.vm);
  return undefined;
}

/**
 * The VM's address once its SSH server answers there. The address comes from
 * the lease file, re-read every probe while the banner of the current one is
 * probed: a VM restored from a snapshot shares its MAC with the earlier
 * clones of its golden, so the first lease seen can be the stale one of a VM
 * that is off, and the guest's own lease replaces it moments later. When the
 * lease file cannot be read (or tart's config has no MAC), `tart ip --wait`.
 */
async function reachable(o: BootOptions, deadline: number, signal: AbortSignal, exited: () => boolean, leased: (ip: string) => void): Promise<string> {
  const { port } = o.config.vm.ssh;
  const mac = o.tart.macAddress(o.vm);
  const leases = o.config.host.dhcpLeasesPath;
  const noBanner = (ip: string) =>
    new BootError(`VM ${o.vm}: no SSH banner from ${ip}:${port} within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms); is Remote Login enabled in the image?`);
  if (mac && leases && sizeOf(leases) > 0) {
    const leaseOf = leaseWatcher(leases, mac);
    const waker = new Waker();
    const watcher = watchLeases(leases, () => waker.wake());
    let probe: { ip: string; ok?: boolean } | undefined;
    try {
      for (;;) {
        const current = exited() ? undefined : leaseOf();
        if (current) {
          if (!probe) leased(current);
          if (probe?.ip !== current || probe.ok === false) {
            const p: { ip: string; ok?: boolean } = { ip: current };
            probe = p;
            void bannerAt(current, port).then((ok) => {
              p.ok = ok;
              if (ok) waker.wake();
            });
          }
          if (probe.ok) return current;
        }
        const left = deadline - Date.now();
        if (signal.aborted || left <= 0) break;
        // No lease yet: the watcher wakes us when the file changes (and a slow poll in case it cannot).
        // A lease: its SSH banner is probed every PROBE_MS, and a probe that succeeds wakes us at once.
        await waker.sleep(Math.min(current ? PROBE_MS : LEASE_POLL_MS, left), signal);
      }
    } finally {
      watcher.close();
    }
    if (signal.aborted) throw new BootError(`boot of ${o.vm} aborted`);
    if (probe) throw noBanner(probe.ip);
    throw new BootError(`VM ${o.vm} got no address within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms): no lease for ${mac} in ${leases}`);
  }
  let ip: string;
  try {
    ip = await o.tart.ip(o.vm, Math.max(1, (deadline - Date.now()) / 1000));
  } catch (err) {
    throw new BootError(`VM ${o.vm} got no address within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms): ${(err as Error).message}`);
  }
  leased(ip);
  const ok = await poll(async () => ((await bannerAt(ip, port)) ? true : undefined), { deadline, everyMs: PROBE_MS, signal });
  if (!ok) throw noBanner(ip);
  return ip;
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<void> {
  if (!values.vm) throw new UsageError("boot: --vm NAME is required");
  const { config, slot, log, tart } = openSlot(common, spec.name);
  const lock = lockSlot(config.host.stateDir, slot);
  try {
    const { ip } = await boot({ config, tart, vm: values.vm, slot, log });
    process.stdout.write(`${ip}\n`);
  } finally {
    lock.release();
  }
}

if (import.meta.main) await runCli(spec, main);
