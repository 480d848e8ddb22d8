// image.lock: the golden image digest the slots clone, written only by `pull`, so
// both slots clone the same fully pulled image and a tag pushed mid-cycle never
// reaches a slot half-pulled. Before the first pull they clone image.ref itself.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/index.ts";
import { StateIoError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";
import type { Logger } from "../core/log.ts";
import { isDigest, parseImageRef, withDigest } from "./oci-ref.ts";

export const IMAGE_LOCK_FILE = "image.lock";

export interface Pin {
  digest: string;
  pinned_at: string;
  /** From the image's dev.macos-runner.runner-version label. */
  runner_version?: string;
}

export interface ImageLock extends Pin {
  /** A pin for another image.ref is ignored. */
  ref: string;
  /** Kept cached for `pull --rollback`. */
  previous?: Pin;
  /** Not pinned again while the tag still points at it. */
  rolled_back?: { digest: string; at: string };
}

export const imageLockPath = (stateDir: string): string => join(stateDir, IMAGE_LOCK_FILE);

export function readImageLock(stateDir: string): ImageLock | undefined {
  const path = imageLockPath(stateDir);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StateIoError(`cannot read ${path}: ${(err as Error).message}`, err);
  }
  try {
    const lock = JSON.parse(text) as ImageLock;
    if (typeof lock.ref !== "string" || !/^sha256:[0-9a-f]{64}$/.test(String(lock.digest))) throw new Error("no ref or digest");
    return lock;
  } catch (err) {
    throw new StateIoError(`${path} is damaged (${(err as Error).message}); run pull to pin the image again`, err);
  }
}

export function writeImageLock(stateDir: string, lock: ImageLock): void {
  try {
    writeFileAtomic(imageLockPath(stateDir), `${JSON.stringify(lock, null, 2)}\n`, 0o644);
  } catch (err) {
    throw new StateIoError(`cannot write ${imageLockPath(stateDir)}: ${(err as Error).message}`, err);
  }
}

/** For readers that must never fail (status, doctor). */
export function inspectImageLock(stateDir: string): { lock?: ImageLock; problem?: string } {
  try {
    const lock = readImageLock(stateDir);
    return lock ? { lock } : {};
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

export interface ImageChoice {
  ref: string;
  digest?: string;
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
