// <state_dir>/image.lock, written by `pull`: the digest slots clone. Read
// here only, tolerantly: a missing file means "no pin yet", a damaged one is
// reported, never thrown.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface ImageLock {
  ref: string;
  /** sha256:… */
  digest: string;
  pinned_at?: string;
  previous?: string;
  runner_version?: string;
}

export const imageLockPath = (stateDir: string): string => join(stateDir, "image.lock");

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function readImageLock(stateDir: string): { lock?: ImageLock; problem?: string } {
  const path = imageLockPath(stateDir);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    return { problem: `${path} is not readable JSON (${(err as Error).message})` };
  }
  const o = raw as Record<string, unknown>;
  if (typeof o !== "object" || o === null || typeof o.ref !== "string" || typeof o.digest !== "string" || !DIGEST.test(o.digest)) {
    return { problem: `${path} lacks a ref and a sha256 digest` };
  }
  const str = (k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined);
  const lock: ImageLock = { ref: o.ref, digest: o.digest };
  for (const k of ["pinned_at", "previous", "runner_version"] as const) {
    const v = str(k);
    if (v !== undefined) lock[k] = v;
  }
  return { lock };
}
