// Which image a slot clones: the digest `pull` pinned in image.lock, so both
// slots of a host clone the same, fully pulled image and a tag pushed
// mid-cycle never reaches a slot half-pulled. Before the first pull (or for
// a local VM name) it is image.ref itself.
import type { Config } from "../config/index.ts";
import { readImageLock } from "./pin.ts";
import type { Logger } from "../core/log.ts";
import { isDigest, parseImageRef, withDigest } from "./oci-ref.ts";

export interface ImageChoice {
  /** What `tart clone` gets: host/ns@sha256:… when pinned. */
  ref: string;
  digest?: string;
  /** False: the tag (no pin yet) or a local VM name. */
  pinned: boolean;
}

export function imageToClone(config: Config, log: Logger): ImageChoice {
  const configured = config.image.ref;
  const remote = parseImageRef(configured);
  if (!remote) return { ref: configured, pinned: false };
  if (isDigest(remote.reference)) return { ref: configured, digest: remote.reference, pinned: true };
  let lock;
  try {
    lock = readImageLock(config.host.stateDir);
  } catch (err) {
    // A slot never fails on the pin: the tag still clones; pull rewrites the lock.
    log.warn("image.lock-unreadable", `${(err as Error).message}; cloning the tag ${configured}`);
    return { ref: configured, pinned: false };
  }
  if (!lock) return { ref: configured, pinned: false };
  if (lock.ref !== configured) {
    log.warn("image.lock-stale", `image.lock pins ${lock.ref}, but image.ref is ${configured}; cloning the tag until pull pins it`);
    return { ref: configured, pinned: false };
  }
  return { ref: withDigest(remote, lock.digest), digest: lock.digest, pinned: true };
}
