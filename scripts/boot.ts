#!/usr/bin/env bun
// boot: start a VM headless and wait until it answers on vm.transport;
// prints its IP. A `tart run` that exits early is read for why.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { openSlot } from "../lib/slot/context.ts";
import { UsageError } from "../lib/core/errors.ts";
import { lockSlot } from "../lib/slot/lock.ts";
import { boot } from "../lib/vm/boot.ts";

export const spec = {
  name: "boot",
  summary: "start a VM with `tart run --no-graphics` (detached) and wait for its address and for it to answer on vm.transport (tart exec or ssh) within vm.boot_timeout",
  options: {
    vm: { type: "string", value: "NAME", description: "the VM to boot (required)" },
  },
  exits: {
    failure: "the VM did not become reachable before vm.boot_timeout, or died while booting (the log says why)",
    "local-network": "vm.transport ssh: macOS Local Network privacy refused the connection to the guest (No route to host)",
    tempfail: "the slot is in use by a loop, or another VM holds one of the host's two VM places",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<void> {
  if (!values.vm) throw new UsageError("boot: --vm NAME is required");
  const { config, slot, log, tart, clock } = openSlot(common, spec.name);
  const lock = lockSlot(config.host.stateDir, slot);
  try {
    const { ip } = await boot({ config, tart, vm: values.vm, slot, log, clock });
    process.stdout.write(`${ip}\n`);
  } finally {
    lock.release();
  }
}

if (import.meta.main) await runCli(spec, main);
