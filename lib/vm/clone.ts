// Cloning a slot's VM, its hardware set before the first boot. Names carry 24
// random bits, so no `tart list` guards against a collision.
import type { Config } from "../config/index.ts";
import type { Logger } from "../core/log.ts";
import type { Tart } from "./tart.ts";

/** A clone on a cold cache pulls the image: 50 GB take a while. */
const CLONE_TIMEOUT_MS = 60 * 60 * 1000;

interface CloneOptions {
  config: Config;
  tart: Tart;
  vm: string;
  image: string;
  log: Logger;
  signal?: AbortSignal;
  /** false for a suspended golden: `tart set` would spoil its saved state. */
  configure?: boolean;
}

/** Returns the ms it took. */
export async function clone(o: CloneOptions): Promise<number> {
  const done = o.log.time("clone.done", { phase: "clone", vm: o.vm });
  await o.tart.clone(o.image, o.vm, CLONE_TIMEOUT_MS, o.signal);
  if (o.configure !== false) await o.tart.set(o.vm, { cpu: o.config.vm.cpu, memoryMb: o.config.vm.memoryMb, randomMac: true });
  return done(`cloned ${o.image}`, { image: o.image, digest: o.image.split("@")[1] });
}
