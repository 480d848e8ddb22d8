// Reads tart's OCI cache (contracts/tart.md §1): $TART_HOME/cache/OCIs/
// <host%3Aport>/<namespace>/<tag> is a symlink to `sha256:<hex>` beside it.
import { existsSync, readlinkSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join } from "node:path";
import { parseImageRef, type ImageRef } from "../image/oci-ref.ts";

export function tartHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.TART_HOME || join(env.HOME || homedir(), ".tart");
}

const namespaceDir = (r: ImageRef, home: string) => join(home, "cache", "OCIs", encodeURIComponent(r.host), r.namespace);

export function cachedDigest(ref: string, home: string = tartHome()): string | undefined {
  const r = parseImageRef(ref);
  if (!r) return undefined;
  if (r.reference.startsWith("sha256:")) return existsSync(join(namespaceDir(r, home), r.reference)) ? r.reference : undefined;
  try {
    const target = basename(readlinkSync(join(namespaceDir(r, home), r.reference)));
    return /^sha256:[0-9a-f]{64}$/.test(target) && existsSync(join(namespaceDir(r, home), target)) ? target : undefined;
  } catch {
    return undefined;
  }
}

export function hasDigest(ref: string, digest: string, home: string = tartHome()): boolean {
  const r = parseImageRef(ref);
  return r !== undefined && existsSync(join(namespaceDir(r, home), digest));
}
