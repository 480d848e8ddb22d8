#!/usr/bin/env bun
// clone: a fresh VM for the slot from the golden image.
//   clone --slot 1            # prints the new VM's name
// Names carry 24 random bits, so no `tart list` guards against a collision.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import type { Logger } from "../lib/log.ts";
import { lockSlot } from "../lib/slot/lock.ts";
import type { Tart } from "../lib/tart.ts";

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

/** Cloning pulls the image on a cold cache; pulls of 50 GB images take a while. */
const CLONE_TIMEOUT_MS = 60 * 60 * 1000;

export interface CloneOptions {
  config: Config;
  tart: Tart;
  vm: string;
  image: string;
  log: Logger;
  signal?: AbortSignal;
  /** false: keep the source's hardware (a clone of a suspended golden: `tart set` would spoil its saved state). */
  configure?: boolean;
}

export async function clone(o: CloneOptions): Promise<void> {
  const done = o.log.time("clone.done", { phase: "clone", vm: o.vm });
  await o.tart.clone(o.image, o.vm, CLONE_TIMEOUT_MS, o.signal);
  if (o.configure !== false) await o.tart.set(o.vm, { cpu: o.config.vm.cpu, memoryMb: o.config.vm.memoryMb, randomMac: true });
  done(`cloned ${o.image}`, { image: o.image, digest: o.image.split("@")[1] });
}

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
