#!/usr/bin/env bun
// boot: start a VM headless and wait until its SSH server answers.
//   boot --slot 1 --vm NAME   # prints the VM's IP
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { MacosRunnerError, UsageError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { waitForSshBanner } from "../lib/ssh.ts";
import type { Tart } from "../lib/tart.ts";

export const spec = {
  name: "boot",
  summary: "start a VM with `tart run --no-graphics` (detached) and wait for its IP and SSH banner within vm.boot_timeout",
  options: {
    vm: { type: "string", value: "NAME", description: "the VM to boot (required)" },
  },
  exits: {
    tempfail: "the VM did not become reachable before vm.boot_timeout, or died while booting",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export class BootError extends MacosRunnerError {
  constructor(message: string) {
    super(message, { kind: "tempfail" });
  }
}

export interface Booted {
  ip: string;
  pid: number;
  /** From `tart run` to an IP, and to the SSH banner (the whole boot). */
  ipMs: number;
  sshMs: number;
}

export function vmLogPath(config: Config, slot: number): string {
  mkdirSync(config.host.logDir, { recursive: true });
  return join(config.host.logDir, `slot-${slot}.vm.log`);
}

export async function boot(o: { config: Config; tart: Tart; vm: string; slot: number; log: Logger; signal?: AbortSignal }): Promise<Booted> {
  const started = Date.now();
  const deadline = started + o.config.vm.bootTimeoutMs;
  const log = o.log.child({ phase: "boot", vm: o.vm });
  const run = o.tart.runDetached(o.vm, vmLogPath(o.config, o.slot));
  let exited: { code: number | null; signal: string | null } | undefined;
  void run.exited.then((e) => (exited = e));
  const died = run.exited.then((e) => {
    throw new BootError(`VM ${o.vm} stopped while booting (tart run exit ${e.code ?? e.signal}); see ${vmLogPath(o.config, o.slot)}`);
  });
  const aborted = new Promise<never>((_, reject) => {
    if (o.signal?.aborted) reject(new BootError("boot aborted"));
    o.signal?.addEventListener("abort", () => reject(new BootError("boot aborted")), { once: true });
  });
  log.debug("boot.started", "tart run started", { pid: run.pid });
  const ip = await Promise.race([o.tart.ip(o.vm, (deadline - Date.now()) / 1000), died, aborted]).catch((err) => {
    if (err instanceof BootError) throw err;
    throw new BootError(`VM ${o.vm} got no IP within vm.boot_timeout (${o.config.vm.bootTimeoutMs} ms): ${(err as Error).message}`);
  });
  const ipMs = Date.now() - started;
  log.debug("boot.ip", `VM has IP ${ip}`, { ip, duration_ms: ipMs });
  await Promise.race([
    waitForSshBanner(ip, o.config.vm.ssh.port, deadline, 25, () => exited === undefined && !o.signal?.aborted),
    died,
    aborted,
  ]).catch((err) => {
    if (err instanceof BootError) throw err;
    throw new BootError(`VM ${o.vm}: ${(err as Error).message}`);
  });
  const sshMs = Date.now() - started;
  log.info("boot.done", `VM reachable at ${ip}`, { ip, duration_ms: sshMs });
  return { ip, pid: run.pid, ipMs, sshMs };
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  if (!values.vm) throw new UsageError("boot: --vm NAME is required");
  const { config, slot, log, tart } = openSlot(common, spec.name);
  const { ip } = await boot({ config, tart, vm: values.vm, slot, log });
  process.stdout.write(`${ip}\n`);
}

if (import.meta.main) await runCli(spec, main);
