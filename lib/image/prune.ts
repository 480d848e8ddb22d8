// Which cached golden-image digests `pull` may delete. The rule:
//   - the pinned and the previous digest are always kept (rollback);
//   - a digest a slot state file names in `image` is kept while that slot
//     has a VM (`vm` set): the slot is cloning it or runs a VM made from it;
//   - every other host/ns@sha256:… of the configured repository goes.
// Clones are copies, so deleting a digest never breaks a VM already made.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../core/log.ts";
import { shortDigest, withDigest, type ImageRef } from "./oci-ref.ts";
import type { Tart, VmListing } from "../vm/tart.ts";

/** Digest -> the slots whose VM comes from it. */
export function digestsInUse(stateDir: string): Map<string, number[]> {
  const inUse = new Map<string, number[]>();
  let files: string[];
  try {
    files = readdirSync(stateDir).filter((f) => /^slot-\d+\.json$/.test(f));
  } catch {
    return inUse;
  }
  for (const file of files) {
    // The fields of a slot's state file this reads (lib/slot/state.ts writes it).
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

/** The digests of `repo` in tart's OCI cache (from `tart list --source oci`). */
export function cachedDigests(entries: VmListing[], repo: ImageRef): string[] {
  const prefix = `${repo.host}/${repo.namespace}@`;
  return entries.filter((e) => e.Name.startsWith(prefix)).map((e) => e.Name.slice(prefix.length));
}

/** Deletes every cached digest of `repo` not in `keep` and not in use; returns what it deleted. */
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
