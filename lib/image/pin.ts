// image.lock in host.state_dir: the golden image digest the slots clone,
// written only by `pull` (temp file + rename), so a slot reads the old pin or
// the new one, never half of either. It holds no secret.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { StateIoError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";

export const IMAGE_LOCK_FILE = "image.lock";

export interface Pin {
  digest: string;
  pinned_at: string;
  /** The actions runner version the image was built with (its dev.macos-runner.runner-version label). */
  runner_version?: string;
}

export interface ImageLock extends Pin {
  /** The image.ref (a tag) this pin was resolved from; a pin for another ref is ignored. */
  ref: string;
  /** The pin before this one, kept cached for `pull --rollback`. */
  previous?: Pin;
  /** A digest rolled back from: pull does not pin it again while the tag still points at it. */
  rolled_back?: { digest: string; at: string };
}

export const imageLockPath = (stateDir: string): string => join(stateDir, IMAGE_LOCK_FILE);

/** The pin, or undefined when there is none yet; a lock that cannot be parsed is a StateIoError. */
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

/** For readers that must never fail (status, doctor): the pin, or what is wrong with the lock. */
export function inspectImageLock(stateDir: string): { lock?: ImageLock; problem?: string } {
  try {
    const lock = readImageLock(stateDir);
    return lock ? { lock } : {};
  } catch (err) {
    return { problem: (err as Error).message };
  }
}
