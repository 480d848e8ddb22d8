#!/usr/bin/env bun
// clone: a fresh VM for the slot from the golden image.
//   clone --slot 1            # prints the new VM's name
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { MacosRunnerError } from "../lib/errors.ts";
import { imageToClone, type ImageChoice } from "../lib/image.ts";
import type { Logger } from "../lib/log.ts";
import { newName } from "../lib/names.ts";
import { parseImageRef } from "../lib/oci-ref.ts";
import type { Tart } from "../lib/tart.ts";

export const spec = {
  name: "clone",
  summary: "clone the golden image (the digest pull pinned, else image.ref) into a new VM for a slot; set CPU, memory and a random MAC",
  options: {
    name: { type: "string", value: "NAME", description: "VM name (default <prefix>-<host>-<slot>-<random>)" },
  },
  exits: {
    usage: "bad flags, or a VM with that name already exists",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** Cloning pulls the image on a cold cache; pulls of 50 GB images take a while. */
const CLONE_TIMEOUT_MS = 60 * 60 * 1000;

export class VmNameTakenError extends MacosRunnerError {
  constructor(name: string) {
    super(`a VM named ${name} already exists; not reusing it (every job gets a fresh clone)`, { kind: "usage" });
  }
}

/**
 * Clones the pinned image (lib/image.ts). `onImage` hears the choice before
 * tart starts, so the caller can record which digest the VM comes from
 * (`pull` keeps a digest a slot state names).
 */
export async function clone(o: { config: Config; tart: Tart; vm: string; log: Logger; onImage?: (image: ImageChoice) => void }): Promise<ImageChoice> {
  if ((await o.tart.list()).some((v) => v.Name === o.vm)) throw new VmNameTakenError(o.vm);
  const image = imageToClone(o.config, o.log);
  if (!image.pinned && parseImageRef(image.ref)) {
    o.log.info("clone.unpinned", `no image pinned yet (pull has not run): cloning the tag ${image.ref}`, { phase: "clone", vm: o.vm });
  }
  o.onImage?.(image);
  const done = o.log.time("clone.done", { phase: "clone", vm: o.vm, image: image.ref, digest: image.digest });
  await o.tart.clone(image.ref, o.vm, CLONE_TIMEOUT_MS);
  await o.tart.set(o.vm, { cpu: o.config.vm.cpu, memoryMb: o.config.vm.memoryMb, randomMac: true });
  done(`cloned ${image.ref}`);
  return image;
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  const { config, slot, log, tart } = openSlot(common, spec.name);
  const vm = values.name ?? newName(config.runner.namePrefix, slot);
  await clone({ config, tart, vm, log });
  process.stdout.write(`${vm}\n`);
}

if (import.meta.main) await runCli(spec, main);
