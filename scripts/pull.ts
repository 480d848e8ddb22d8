#!/usr/bin/env bun
// pull: keeps the golden image fresh, run by its own launchd agent on an interval.
//   pull                  # HEAD the tag; a new digest: tart pull <repo>@<digest>, verify, pin, prune
//   pull --status [--json]
//   pull --rollback       # pin the previous image again
//   pull --runner-check   # is the image's actions runner recent enough for GitHub?
// Slots clone the pinned digest (image.lock), so they never wait for a pull
// and never see a half-pulled image; any failure here leaves the pin as it is.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { loadConfig, type Config } from "../lib/config/index.ts";
import { registryFor, tartFor } from "../lib/slot/context.ts";
import { formatGb, freeBytes, requiredFreeBytes, tartHomeDir } from "../lib/core/disk.ts";
import { exitCode, MacosRunnerError, type ExitKind } from "../lib/core/errors.ts";
import { FileLock } from "../lib/core/flock.ts";
import { readImageInfo } from "../lib/image/info.ts";
import { readImageLock, writeImageLock, type ImageLock } from "../lib/image/pin.ts";
import { cachedDigests, digestsInUse, pruneCache } from "../lib/image/prune.ts";
import { createLogger, type Logger } from "../lib/core/log.ts";
import { isDigest, parseImageRef, shortDigest, withDigest, type ImageRef } from "../lib/image/oci-ref.ts";
import type { RegistryClient } from "../lib/image/registry.ts";
import { checkRunnerFreshness } from "../lib/image/runner-release.ts";
import { TartError, type Tart } from "../lib/vm/tart.ts";

export const spec = {
  name: "pull",
  summary: "pull the golden image's new digest into tart's cache, pin it for the slots (image.lock), prune old ones",
  options: {
    status: { type: "boolean", description: "print the pinned, previous, available and cached digests, change nothing" },
    rollback: { type: "boolean", description: "pin the previous image again; the tag's digest is not re-pinned until the tag moves" },
    "runner-check": { type: "boolean", description: "compare the image's actions runner with the latest release: warn from 14 days behind, fail from 25" },
    json: { type: "boolean", description: "with --status or --runner-check: print one JSON object" },
  },
  exits: {
    failure: "--rollback without a previous image; --runner-check: the runner is 25+ days behind (GitHub cuts it off at 30)",
    "bad-input": "the registry served an image whose digest does not match, or tart or the registry answered something unexpected",
    unavailable: "less free disk than the floor (image.min_free_gb, default disk size + 20 GB), or tart is not installed",
    "state-io": "image.lock or the pull lock cannot be written",
    tempfail: "the registry (or GitHub, for --runner-check) is unreachable or failing, or another pull is running",
    config: "config invalid, the registry refused the credentials, or the tag does not exist",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** A 50 GB image over a slow link. */
const PULL_TIMEOUT_MS = 4 * 3600_000;

interface Context {
  config: Config;
  repo: ImageRef;
  tart: Tart;
  registry: RegistryClient;
  log: Logger;
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  const config = loadConfig({ path: common.config });
  const log = createLogger({ verbose: common.verbose, fields: { phase: "pull" } });
  const ref = config.image.ref;
  const repo = parseImageRef(ref);
  if (!repo || isDigest(repo.reference)) {
    const why = repo ? "names a digest itself, so it is pinned by the config" : "is a local VM name (no registry)";
    log.info("pull.nothing", `image.ref ${ref} ${why}: nothing to pull or pin`);
    if (values.status) print(values.json, { ref, pinned: null, note: why }, `image.ref   ${ref}\n            ${why}; nothing to pull or pin\n`);
    return exitCode("ok");
  }
  const ctx: Context = { config, repo, tart: tartFor(config), registry: registryFor(config, repo), log };
  if (values.status) return status(ctx, Boolean(values.json));
  if (values["runner-check"]) return runnerCheck(ctx, Boolean(values.json));

  const stateDir = config.host.stateDir;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const lockPath = join(stateDir, "pull.lock");
  const held = FileLock.tryAcquire(lockPath);
  if (!held) {
    const pid = FileLock.holderPid(lockPath);
    throw new MacosRunnerError(`another pull${pid ? ` (pid ${pid})` : ""} holds ${lockPath}; not starting a second one`, { kind: "tempfail" });
  }
  try {
    return values.rollback ? await rollback(ctx) : await update(ctx);
  } finally {
    held.release();
  }
}

/** The pin for this image.ref, or undefined (none yet, another ref, or a damaged file: pull rewrites it). */
function currentPin(ctx: Context): ImageLock | undefined {
  try {
    const lock = readImageLock(ctx.config.host.stateDir);
    return lock?.ref === ctx.config.image.ref ? lock : undefined;
  } catch (err) {
    ctx.log.warn("pull.lock-damaged", (err as Error).message);
    return undefined;
  }
}

/** Rethrows with what stays in service, so each failure is one clear line. */
function keepingPin(err: unknown, pin: ImageLock | undefined, kind?: ExitKind): never {
  if (!(err instanceof MacosRunnerError)) throw err;
  const keeping = pin ? `the pinned image ${shortDigest(pin.digest)} stays in service` : "slots clone the tag until a pull succeeds";
  throw new MacosRunnerError(`${err.message}; ${keeping}`, { kind: kind ?? err.kind, cause: err });
}

async function update(ctx: Context): Promise<number> {
  const { config, repo, tart, registry, log } = ctx;
  const pin = currentPin(ctx);
  const tag = await registry.headManifest(repo.namespace, repo.reference).catch((err) => keepingPin(err, pin));

  if (pin?.digest === tag.digest || pin?.rolled_back?.digest === tag.digest) {
    if (pin.digest !== tag.digest) {
      log.info("pull.rolled-back", `the tag still points at ${shortDigest(tag.digest)}, which was rolled back; ${shortDigest(pin.digest)} stays pinned until the tag moves`);
    }
    // Someone may have pruned tart's cache by hand: bring the pinned image back.
    if (!cachedDigests(await tart.listCached(), repo).includes(pin.digest)) {
      log.warn("pull.repull", `the pinned image ${shortDigest(pin.digest)} is no longer in tart's cache; pulling it again`);
      await pullDigest(ctx, pin.digest, pin);
    } else if (pin.digest === tag.digest) {
      log.info("pull.current", `${config.image.ref} is still ${shortDigest(pin.digest)}: nothing to pull`, { digest: pin.digest });
    }
    await prune(ctx, pin);
    return exitCode("ok");
  }

  const info = await readImageInfo(registry, repo.namespace, tag.digest).catch((err) => keepingPin(err, pin));
  const home = tartHomeDir();
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
    ...(pin && { previous: { digest: pin.digest, pinned_at: pin.pinned_at, ...(pin.runner_version && { runner_version: pin.runner_version }) } }),
  };
  writeImageLock(config.host.stateDir, next);
  log.info("pull.pinned", `pinned ${shortDigest(tag.digest)}${info.runnerVersion ? ` (runner ${info.runnerVersion})` : ""}; slots clone it from their next cycle`, {
    digest: tag.digest, previous: pin?.digest, runner_version: info.runnerVersion,
  });
  await prune(ctx, next);
  return exitCode("ok");
}

/** `tart pull <repo>@<digest>`, then checks that tart's cache holds exactly that digest. */
async function pullDigest(ctx: Context, digest: string, pin: ImageLock | undefined): Promise<void> {
  const { tart, repo, log } = ctx;
  const before = new Set(cachedDigests(await ctx.tart.listCached(), repo));
  const done = log.time("pull.pulled", { digest });
  try {
    await tart.pull(withDigest(repo, digest), PULL_TIMEOUT_MS);
  } catch (err) {
    // tart's own words (registry down, disk full); the next run tries again.
    keepingPin(err, pin, err instanceof TartError && err.kind === "unavailable" ? "unavailable" : "tempfail");
  }
  const after = cachedDigests(await tart.listCached(), repo);
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

async function prune(ctx: Context, pin: ImageLock): Promise<void> {
  const keep = new Set([pin.digest, ...(pin.previous ? [pin.previous.digest] : [])]);
  await pruneCache({ tart: ctx.tart, repo: ctx.repo, keep, stateDir: ctx.config.host.stateDir, log: ctx.log });
}

async function rollback(ctx: Context): Promise<number> {
  const { config, repo, tart, log } = ctx;
  const pin = currentPin(ctx);
  if (!pin?.previous) {
    throw new MacosRunnerError(`no previous image to roll back to in ${join(config.host.stateDir, "image.lock")} (a rollback needs two pulls of different digests)`);
  }
  const back = pin.previous;
  if (!cachedDigests(await tart.listCached(), repo).includes(back.digest)) {
    log.warn("pull.repull", `the previous image ${shortDigest(back.digest)} is no longer in tart's cache; pulling it again`);
    await pullDigest(ctx, back.digest, pin);
  }
  const now = new Date().toISOString();
  writeImageLock(config.host.stateDir, {
    ref: pin.ref,
    digest: back.digest,
    pinned_at: now,
    ...(back.runner_version && { runner_version: back.runner_version }),
    previous: { digest: pin.digest, pinned_at: pin.pinned_at, ...(pin.runner_version && { runner_version: pin.runner_version }) },
    rolled_back: { digest: pin.digest, at: now },
  });
  log.info("pull.rollback", `rolled back: pinned ${shortDigest(back.digest)} again (was ${shortDigest(pin.digest)}); slots clone it from their next cycle`, {
    digest: back.digest, previous: pin.digest,
  });
  return exitCode("ok");
}

async function status(ctx: Context, json: boolean): Promise<number> {
  const { config, repo, tart, registry } = ctx;
  const pin = currentPin(ctx) ?? null;
  const available = await registry.headManifest(repo.namespace, repo.reference).then(
    (t) => ({ digest: t.digest }),
    (err: Error) => ({ error: err.message }),
  );
  const cached = await tart.listCached().then((l) => cachedDigests(l, repo), (err: Error) => ({ error: err.message }));
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
  print(json, report, text);
  return exitCode("ok");
}

async function runnerCheck(ctx: Context, json: boolean): Promise<number> {
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
  print(json, r, `${r.message}\n`);
  return r.verdict === "error" ? exitCode("failure") : exitCode("ok");
}

function print(json: boolean | undefined, report: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : text);
}

if (import.meta.main) await runCli(spec, main);
