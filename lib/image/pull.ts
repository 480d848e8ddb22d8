// The `pull` command's work: pull, verify, pin and prune the tag's new digest;
// roll back; report; check the image's actions runner. Any failure leaves the pin.
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/index.ts";
import { formatGb, freeBytes, requiredFreeBytes } from "../core/disk.ts";
import { MacosRunnerError, type ExitKind } from "../core/errors.ts";
import { FileLock } from "../core/flock.ts";
import type { Logger } from "../core/log.ts";
import { TartError, type Tart } from "../vm/tart.ts";
import { tartHome } from "../vm/tart-cache.ts";
import { shortDigest, withDigest, type ImageRef } from "./oci-ref.ts";
import { imageLockPath, readImageLock, writeImageLock, type ImageLock, type Pin } from "./pin.ts";
import { readImageInfo, type RegistryClient } from "./registry.ts";
import { checkRunnerFreshness, type RunnerFreshness } from "./runner-release.ts";

/** A 50 GB image over a slow link. */
const PULL_TIMEOUT_MS = 4 * 3600_000;

export interface PullContext {
  config: Config;
  repo: ImageRef;
  tart: Tart;
  registry: RegistryClient;
  log: Logger;
}

/** One pull or rollback at a time per host. */
export async function withPullLock<T>(stateDir: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const lockPath = join(stateDir, "pull.lock");
  const held = FileLock.tryAcquire(lockPath);
  if (!held) {
    const pid = FileLock.holderPid(lockPath);
    throw new MacosRunnerError(`another pull${pid ? ` (pid ${pid})` : ""} holds ${lockPath}; not starting a second one`, { kind: "tempfail" });
  }
  try {
    return await fn();
  } finally {
    held.release();
  }
}

/** Undefined for another ref or a damaged file too: pull rewrites it. */
function currentPin(ctx: PullContext): ImageLock | undefined {
  try {
    const lock = readImageLock(ctx.config.host.stateDir);
    return lock?.ref === ctx.config.image.ref ? lock : undefined;
  } catch (err) {
    ctx.log.warn("pull.lock-damaged", (err as Error).message);
    return undefined;
  }
}

function pinOf({ digest, pinned_at, runner_version }: Pin): Pin {
  return { digest, pinned_at, ...(runner_version && { runner_version }) };
}

/** Rethrows with what stays in service. */
function keepingPin(err: unknown, pin: ImageLock | undefined, kind?: ExitKind): never {
  if (!(err instanceof MacosRunnerError)) throw err;
  const keeping = pin ? `the pinned image ${shortDigest(pin.digest)} stays in service` : "slots clone the tag until a pull succeeds";
  throw new MacosRunnerError(`${err.message}; ${keeping}`, { kind: kind ?? err.kind, cause: err });
}

export async function updatePin(ctx: PullContext): Promise<void> {
  const { config, repo, registry, log } = ctx;
  const pin = currentPin(ctx);
  const tag = await registry.headManifest(repo.namespace, repo.reference).catch((err) => keepingPin(err, pin));

  if (pin?.digest === tag.digest || pin?.rolled_back?.digest === tag.digest) {
    if (pin.digest !== tag.digest) {
      log.info("pull.rolled-back", `the tag still points at ${shortDigest(tag.digest)}, which was rolled back; ${shortDigest(pin.digest)} stays pinned until the tag moves`);
    }
    // Someone may have pruned tart's cache by hand: bring the pinned image back.
    if (!(await cachedDigests(ctx)).includes(pin.digest)) {
      log.warn("pull.repull", `the pinned image ${shortDigest(pin.digest)} is no longer in tart's cache; pulling it again`);
      await pullDigest(ctx, pin.digest, pin);
    } else if (pin.digest === tag.digest) {
      log.info("pull.current", `${config.image.ref} is still ${shortDigest(pin.digest)}: nothing to pull`, { digest: pin.digest });
    }
    await prune(ctx, pin);
    return;
  }

  const info = await readImageInfo(registry, repo.namespace, tag.digest).catch((err) => keepingPin(err, pin));
  const home = tartHome();
  const need = requiredFreeBytes(config.image.minFreeGb, info.uncompressedDiskSize);
  const free = freeBytes(home);
  if (free < need) {
    const floor = config.image.minFreeGb !== undefined ? "image.min_free_gb" : "the image's disk size + 20 GB";
    keepingPin(new MacosRunnerError(
      `not pulling ${shortDigest(tag.digest)}: ${formatGb(free)} free on the volume of ${home}, below the floor of ${formatGb(need)} (${floor}); free some space (tart prune, old VMs)`,
      { kind: "unavailable" },
    ), pin);
  }

  log.info("pull.start", `${config.image.ref} moved to ${shortDigest(tag.digest)}${pin ? ` (pinned: ${shortDigest(pin.digest)})` : ""}; pulling it`, { digest: tag.digest });
  await pullDigest(ctx, tag.digest, pin);
  const now = new Date().toISOString();
  const next: ImageLock = {
    ref: config.image.ref,
    digest: tag.digest,
    pinned_at: now,
    ...(info.runnerVersion && { runner_version: info.runnerVersion }),
    ...(pin && { previous: pinOf(pin) }),
  };
  writeImageLock(config.host.stateDir, next);
  log.info("pull.pinned", `pinned ${shortDigest(tag.digest)}${info.runnerVersion ? ` (runner ${info.runnerVersion})` : ""}; slots clone it from their next cycle`, {
    digest: tag.digest, previous: pin?.digest, runner_version: info.runnerVersion,
  });
  await prune(ctx, next);
}

/** Then checks that tart's cache holds exactly that digest. */
async function pullDigest(ctx: PullContext, digest: string, pin: ImageLock | undefined): Promise<void> {
  const { tart, repo, log } = ctx;
  const before = new Set(await cachedDigests(ctx));
  const done = log.time("pull.pulled", { digest });
  try {
    await tart.pull(withDigest(repo, digest), PULL_TIMEOUT_MS);
  } catch (err) {
    keepingPin(err, pin, err instanceof TartError && err.kind === "unavailable" ? "unavailable" : "tempfail");
  }
  const after = await cachedDigests(ctx);
  if (!after.includes(digest)) {
    const stray = after.filter((d) => !before.has(d));
    for (const d of stray) await tart.delete(withDigest(repo, d));
    keepingPin(new MacosRunnerError(
      `tart pulled ${withDigest(repo, digest)} but its cache has no such digest${stray.length ? ` (it stored ${stray.map(shortDigest).join(", ")}, now deleted)` : ""}: the registry served content that does not match the digest; not pinning it`,
      { kind: "bad-input" },
    ), pin);
  }
  done(`pulled ${shortDigest(digest)} into tart's cache`);
}

/**
 * Deletes every cached digest but the pinned, the previous and those a slot's
 * VM comes from. Clones are copies, so deleting a digest never breaks a VM already made.
 */
async function prune(ctx: PullContext, pin: ImageLock): Promise<void> {
  const keep = new Set([pin.digest, ...(pin.previous ? [pin.previous.digest] : [])]);
  const inUse = digestsInUse(ctx.config.host.stateDir);
  for (const digest of await cachedDigests(ctx)) {
    if (keep.has(digest)) continue;
    const slots = inUse.get(digest);
    if (slots) {
      ctx.log.info("prune.kept", `keeping ${shortDigest(digest)}: the VM of slot ${slots.join(" and ")} comes from it`, { digest });
      continue;
    }
    await ctx.tart.delete(withDigest(ctx.repo, digest));
    ctx.log.info("prune.deleted", `deleted ${shortDigest(digest)} from tart's cache (neither pinned, previous, nor used by a slot)`, { digest });
  }
}

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

async function cachedDigests({ tart, repo }: Pick<PullContext, "tart" | "repo">): Promise<string[]> {
  const prefix = `${repo.host}/${repo.namespace}@`;
  return (await tart.listCached()).filter((e) => e.Name.startsWith(prefix)).map((e) => e.Name.slice(prefix.length));
}

export async function rollbackPin(ctx: PullContext): Promise<void> {
  const { config, log } = ctx;
  const pin = currentPin(ctx);
  if (!pin?.previous) {
    throw new MacosRunnerError(`no previous image to roll back to in ${imageLockPath(config.host.stateDir)} (a rollback needs two pulls of different digests)`);
  }
  const back = pin.previous;
  if (!(await cachedDigests(ctx)).includes(back.digest)) {
    log.warn("pull.repull", `the previous image ${shortDigest(back.digest)} is no longer in tart's cache; pulling it again`);
    await pullDigest(ctx, back.digest, pin);
  }
  const now = new Date().toISOString();
  writeImageLock(config.host.stateDir, {
    ref: pin.ref,
    ...pinOf(back),
    pinned_at: now,
    previous: pinOf(pin),
    rolled_back: { digest: pin.digest, at: now },
  });
  log.info("pull.rollback", `rolled back: pinned ${shortDigest(back.digest)} again (was ${shortDigest(pin.digest)}); slots clone it from their next cycle`, {
    digest: back.digest, previous: pin.digest,
  });
}

export async function pullStatus(ctx: PullContext): Promise<{ report: unknown; text: string }> {
  const { config, repo, registry } = ctx;
  const pin = currentPin(ctx) ?? null;
  const available = await registry.headManifest(repo.namespace, repo.reference).then(
    (t) => ({ digest: t.digest }),
    (err: Error) => ({ error: err.message }),
  );
  const cached = await cachedDigests(ctx).catch((err: Error) => ({ error: err.message }));
  const inUse = Object.fromEntries(digestsInUse(config.host.stateDir));
  const report = { ref: config.image.ref, pinned: pin && { digest: pin.digest, pinned_at: pin.pinned_at, runner_version: pin.runner_version ?? null }, previous: pin?.previous ?? null, rolled_back: pin?.rolled_back ?? null, available, cached, in_use: inUse };
  const pinLine = (p: { digest: string; pinned_at: string; runner_version?: string } | null | undefined) =>
    p ? `${p.digest}  pinned ${p.pinned_at}${p.runner_version ? `  runner ${p.runner_version}` : ""}` : "none";
  const availableLine = "error" in available
    ? `unknown: ${available.error}`
    : `${available.digest}${available.digest === pin?.digest ? "  (pinned)" : available.digest === pin?.rolled_back?.digest ? "  (rolled back from; not re-pinned until the tag moves)" : "  (new: the next pull pins it)"}`;
  const text = [
    `image.ref   ${config.image.ref}`,
    `pinned      ${pinLine(pin)}`,
    `previous    ${pinLine(pin?.previous)}`,
    `available   ${availableLine}`,
    `cached      ${Array.isArray(cached) ? cached.join("\n            ") || "none" : `unknown: ${cached.error}`}`,
    `in use      ${Object.entries(inUse).map(([d, slots]) => `${shortDigest(d)} (slot ${slots.join(", ")})`).join(", ") || "none"}`,
    "",
  ].join("\n");
  return { report, text };
}

export async function checkPinnedRunner(ctx: PullContext): Promise<RunnerFreshness> {
  const { config, repo, registry, log } = ctx;
  const pin = currentPin(ctx);
  const version = pin?.runner_version ?? (await readImageInfo(registry, repo.namespace, pin?.digest ?? repo.reference)).runnerVersion;
  if (!version) {
    throw new MacosRunnerError(
      `the image ${pin ? withDigest(repo, pin.digest) : config.image.ref} has no dev.macos-runner.runner-version label; push it with tart push --label dev.macos-runner.runner-version=<version> (guest/push does)`,
      { kind: "bad-input" },
    );
  }
  const r = await checkRunnerFreshness({ imageVersion: version, releasesUrl: config.image.runnerReleasesUrl });
  const fields = { runner_version: r.imageVersion, latest: r.latestVersion, days_behind: r.daysBehind, verdict: r.verdict };
  if (r.verdict === "error") log.error("runner.check", r.message, fields);
  else if (r.verdict === "warn") log.warn("runner.check", r.message, fields);
  else log.info("runner.check", r.message, fields);
  return r;
}
