#!/usr/bin/env bun
// boot: start a VM headless and wait until its SSH server answers.
//   boot --slot 1 --vm NAME          # prints the VM's IP
// The address comes straight from the DHCP lease file as soon as the lease
// appears (tart's own `ip --wait` re-reads it only once a second); then the
// SSH banner is polled. A `tart run` that exits early is read for why.
import { mkdirSync, openSync, readSync, closeSync, statSync } from "node:fs";
import { join } from "node:path";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { MacosRunnerError, UsageError } from "../lib/errors.ts";
import { leaseFor } from "../lib/leases.ts";
import type { Logger } from "../lib/log.ts";
import { aborted } from "../lib/signals.ts";
import { lockSlot } from "../lib/slot/lock.ts";
import { bannerAt } from "../lib/ssh.ts";
import { vmLimitOthers, VmLimitError, type RunningVm, type Tart } from "../lib/tart.ts";
import { poll } from "../lib/wait.ts";

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

/** How often the lease file and the SSH port are looked at while a VM boots. */
const PROBE_MS = 20;
/** A `tart run` still up after this long has got past the start failures it reports at once (2-VM limit, VZ errors). */
const ALIVE_MS = 1000;

export function vmLogPath(config: Config, slot: number): string {
  mkdirSync(config.host.logDir, { recursive: true });
  return join(config.host.logDir, `slot-${slot}.vm.log`);
}

/** What `tart run` wrote to the VM log after `offset`, for the error when it exits early. */
function logTail(path: string, offset: number): string {
  try {
    const fd = openSync(path, "r");
    try {
      const size = statSync(path).size;
      const start = Math.max(offset, size - 4096);
      const buf = Buffer.alloc(Math.max(0, size - start));
      readSync(fd, buf, 0, buf.length, start);
      return buf.toString("utf8").trim();
    } finally {
      closeSync(fd);
    }
  } catch {
    return "";
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export interface BootOptions {
  config: Config;
  tart: Tart;
  vm: string;
  slot: number;
  log: Logger;
  signal?: AbortSignal;
  /** Called once the VM is alive: up for ALIVE_MS, or given an address, whichever comes first. */
  onAlive?: () => void;
}

export async function boot(o: BootOptions): Promise<Booted> {
  const started = Date.now();
  const deadline = started + o.config.vm.bootTimeoutMs;
  const log = o.log.child({ phase: "boot", vm: o.vm });
  const logFile = vmLogPath(o.config, o.slot);
  const offset = sizeOf(logFile);
  const vm = o.tart.run(o.vm, logFile);
  let exited = false;
  const aliveTimer = setTimeout(() => o.onAlive?.(), ALIVE_MS);
  const died = vm.exited.then((e): never => {
    exited = true;
    clearTimeout(aliveTimer);
    const output = logTail(logFile, offset);
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
  log.debug("boot.started", "tart run started", { pid: vm.pid });
  try {
    const ip = await race(findAddress(o, deadline, signal, () => exited));
    const leasedAt = Date.now();
    clearTimeout(aliveTimer);
    o.onAlive?.();
    log.info("boot.ip", `VM has address ${ip}`, { ip, duration_ms: leasedAt - started });
    const ok = await race(poll(async () => ((await bannerAt(ip, o.config.vm.ssh.port)) ? true : undefined), { deadline, everyMs: PROBE_MS, signal }));
    if (!ok) throw new BootError(`VM ${o.vm}: no SSH banner from ${ip}:${o.config.vm.ssh.port} within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms); is Remote Login enabled in the image?`);
    const sshAt = Date.now();
    log.info("boot.done", `VM reachable at ${ip}`, { ip, duration_ms: sshAt - started, ssh_ms: sshAt - leasedAt });
    return { ip, vm, startedAt: started, leasedAt, sshAt };
  } finally {
    clearTimeout(aliveTimer);
    stopped.abort();
    died.catch(() => {});
    abortedP.catch(() => {});
  }
}

/**
 * The VM's address: from the lease file as soon as its MAC has a lease; when
 * the lease file cannot be read (or tart's config has no MAC), from `tart ip --wait`.
 */
async function findAddress(o: { config: Config; tart: Tart; vm: string }, deadline: number, signal: AbortSignal, exited: () => boolean): Promise<string> {
  const mac = o.tart.macAddress(o.vm);
  const leases = o.config.host.dhcpLeasesPath;
  if (mac && leases && sizeOf(leases) > 0) {
    const ip = await poll(() => (exited() ? undefined : leaseFor(leases, mac)), { deadline, everyMs: PROBE_MS, signal });
    if (ip) return ip;
    if (!signal.aborted && Date.now() >= deadline - PROBE_MS) {
      throw new BootError(`VM ${o.vm} got no address within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms): no lease for ${mac} in ${leases}`);
    }
  }
  try {
    return await o.tart.ip(o.vm, Math.max(1, (deadline - Date.now()) / 1000));
  } catch (err) {
    throw new BootError(`VM ${o.vm} got no address within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms): ${(err as Error).message}`);
  }
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
