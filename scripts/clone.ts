#!/usr/bin/env bun
// clone: a fresh VM for the slot from the golden image; prints its name.
// Names carry 24 random bits, so no `tart list` guards against a collision.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { openSlot } from "../lib/slot/context.ts";
import { lockSlot } from "../lib/slot/lock.ts";
import { clone } from "../lib/vm/clone.ts";

export const spec = {
  name: "clone",
  summary: "clone the golden image (image.ref) into a new VM for a slot; set CPU, memory and a random MAC",
  options: {
    name: { type: "string", value: "NAME", description: "VM name (default <prefix>-<host>-<slot>-<random>)" },
  },
  exits: {
    tempfail: "the slot is in use by a loop",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<void> {
  const { config, slot, log, tart, names } = openSlot(common, spec.name);
  const lock = lockSlot(config.host.stateDir, slot);
  try {
    const vm = values.name ?? names.next();
    await clone({ config, tart, vm, image: config.image.ref, log });
    process.stdout.write(`${vm}\n`);
  } finally {
    lock.release();
  }
}

if (import.meta.main) await runCli(spec, main);
