// Cloning a fresh VM for a slot from the image (or a golden), with its
// hardware set before the first boot. Names carry 24 random bits, so no
// `tart list` guards against a collision.
import type { Config } from "../config/index.ts";
import type { Logger } from "../core/log.ts";
import type { Tart } from "./tart.ts";

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

/** Clones (and sets up) the VM; returns how long that took, in ms. */
export async function clone(o: CloneOptions): Promise<number> {
  const done = o.log.time("clone.done", { phase: "clone", vm: o.vm });
  await o.tart.clone(o.image, o.vm, CLONE_TIMEOUT_MS, o.signal);
  if (o.configure !== false) await o.tart.set(o.vm, { cpu: o.config.vm.cpu, memoryMb: o.config.vm.memoryMb, randomMac: true });
  return done(`cloned ${o.image}`, { image: o.image, digest: o.image.split("@")[1] });
}
