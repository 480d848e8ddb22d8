// Which images of a repository a retention run keeps: the newest N digests by upload
// time (tart's org.cirruslabs.tart.upload-time annotation, else the OCI
// config's `created`). Deleting is by digest, and a digest deletes every tag
// that points at it, so a digest is kept when any kept tag points at it. A
// tag with no time is never deleted: it cannot be ranked.
import type { Logger } from "../../lib/core/log.ts";
import type { RegistryClient } from "../../lib/image/registry.ts";

const UPLOAD_TIME = "org.cirruslabs.tart.upload-time";

export interface TagInfo {
  tag: string;
  digest: string;
  /** ISO time it was pushed, when the image says. */
  time?: string;
}

export interface RetentionPlan {
  repository: string;
  keep: TagInfo[];
  /** Digest -> the tags that go with it. */
  remove: { digest: string; tags: string[] }[];
  undated: TagInfo[];
}

export async function describeTags(registry: RegistryClient, repository: string): Promise<TagInfo[]> {
  const out: TagInfo[] = [];
  for (const tag of await registry.listTags(repository)) {
    const { digest, manifest } = await registry.getManifest(repository, tag);
    let time = manifest.annotations?.[UPLOAD_TIME];
    if (!time) time = (await registry.getJsonBlob<{ created?: string }>(repository, manifest.config.digest)).created;
    out.push({ tag, digest, ...(time && !Number.isNaN(Date.parse(time)) && { time }) });
  }
  return out;
}

export function planRetention(repository: string, tags: TagInfo[], keepCount: number): RetentionPlan {
  const dated = tags.filter((t) => t.time).sort((a, b) => Date.parse(b.time!) - Date.parse(a.time!) || a.tag.localeCompare(b.tag));
  const undated = tags.filter((t) => !t.time);
  // N images, not N tag names: tags on one digest stand or fall together.
  const keptDigests = new Set<string>();
  for (const t of dated) if (keptDigests.size < keepCount) keptDigests.add(t.digest);
  const keep = dated.filter((t) => keptDigests.has(t.digest));
  for (const t of undated) keptDigests.add(t.digest);
  const remove = new Map<string, string[]>();
  for (const t of tags) if (!keptDigests.has(t.digest)) remove.set(t.digest, [...(remove.get(t.digest) ?? []), t.tag]);
  return { repository, keep, remove: [...remove].map(([digest, ts]) => ({ digest, tags: ts.sort() })), undated };
}

/** Deletes the plan's digests (DELETE by digest; a tag answers 400). */
export async function applyRetention(registry: RegistryClient, plan: RetentionPlan, log: Logger): Promise<void> {
  for (const r of plan.remove) {
    await registry.deleteManifest(plan.repository, r.digest);
    log.info("retention.deleted", `deleted ${plan.repository}@${r.digest} (tags ${r.tags.join(", ")})`, { repository: plan.repository, digest: r.digest, tags: r.tags });
  }
}
