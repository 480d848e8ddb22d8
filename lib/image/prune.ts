// Which cached golden-image digests `pull` deletes: all but the pinned, the
// previous and those a slot's VM comes from. Clones are copies, so deleting a
// digest never breaks a VM already made.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../core/log.ts";
import { shortDigest, withDigest, type ImageRef } from "./oci-ref.ts";
import type { Tart, VmListing } from "../vm/tart.ts";

/** Digest -> the slots whose VM (being cloned or running) comes from it. */
export function digestsInUse(stateDir: string): Map<string, number[]> {
  const inUse = new Map<string, number[]>();
  let files: string[];
  try {
    files = readdirSync(stateDir).filter((f) => /^slot-\d+\.json$/.test(f));
  } catch {
    return inUse;
  }
  for (const file of files) {
    // The fields of lib/slot/state.ts's file this reads.
    let state: { vm?: string; image?: string; slot?: number };
    try {
      state = JSON.parse(readFileSync(join(stateDir, file), "utf8"));
    } catch {
      continue; // being rewritten (atomic rename) or damaged: the loop recovers it
    }
    if (state.vm && state.image) inUse.set(state.image, [...(inUse.get(state.image) ?? []), Number(state.slot)]);
  }
  return inUse;
}

export function cachedDigests(entries: VmListing[], repo: ImageRef): string[] {
  const prefix = `${repo.host}/${repo.namespace}@`;
  return entries.filter((e) => e.Name.startsWith(prefix)).map((e) => e.Name.slice(prefix.length));
}

export async function pruneCache(o: { tart: Tart; repo: ImageRef; keep: Set<string>; stateDir: string; log: Logger }): Promise<string[]> {
  const inUse = digestsInUse(o.stateDir);
  const deleted: string[] = [];
  for (const digest of cachedDigests(await o.tart.listCached(), o.repo)) {
    if (o.keep.has(digest)) continue;
    const slots = inUse.get(digest);
    if (slots) {
      o.log.info("prune.kept", `keeping ${shortDigest(digest)}: the VM of slot ${slots.join(" and ")} comes from it`, { digest });
      continue;
    }
    await o.tart.delete(withDigest(o.repo, digest));
    o.log.info("prune.deleted", `deleted ${shortDigest(digest)} from tart's cache (neither pinned, previous, nor used by a slot)`, { digest });
    deleted.push(digest);
  }
  return deleted;
}
